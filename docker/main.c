/* basalt-docker: a Docker volume plugin (the legacy plugin protocol) that
 * serves Basalt volumes to containers.
 *
 *   basalt-docker [-c CONF] [--keyring PATH] [--name ENTITY] [--socket PATH]
 *                 [--state-dir DIR] [--takeover wait|break] [--default-size SIZE]
 *                 [--default-pool POOL] [--fs ext4|xfs] [--log-file PATH]
 *                 [--metrics-addr HOST:PORT] [--debug] [-f]
 *
 * The main thread waits for SIGTERM or SIGINT; libmicrohttpd's thread
 * answers Docker (http.c) through the driver (driver.c), which mounts
 * volumes through basalt-fuse children and loop devices (attach.c). On
 * SIGTERM the plugin stops answering and exits, leaving every mount in
 * place: running containers keep their data, and a restarted plugin
 * takes them up from its state file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cluster/tool.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/size.h"
#include "common/version.h"
#include "driver.h"
#include "http.h"

#define DEFAULT_SOCKET "/run/docker/plugins/basalt.sock"
#define DEFAULT_STATE_DIR "/var/lib/basalt/docker"
#define DEFAULT_SIZE "10G"

static const char usage_text[] =
	"usage: basalt-docker [-c CONF] [--keyring PATH] [--name ENTITY] [--socket PATH]\n"
	"                     [--state-dir DIR] [--takeover wait|break] [--default-size SIZE]\n"
	"                     [--default-pool POOL] [--fs ext4|xfs] [--log-file PATH]\n"
	"                     [--metrics-addr HOST:PORT] [--debug] [-f]\n"
	"A Docker volume plugin (driver name: the socket's name, basalt): docker volume\n"
	"create -d basalt --opt size=20G [--opt pool=P] [--opt fs=ext4|xfs] NAME makes a\n"
	"Basalt volume (one that exists already is adopted); a container mounting it\n"
	"gets a filesystem on it, made at first use when the volume was never written\n"
	"(a volume holding data but no filesystem is refused, never formatted). A\n"
	"mounted volume is served by a basalt-fuse child through a loop device and holds\n"
	"the volume's exclusive lock for this node until its last container is done.\n"
	"A volume locked by another node is waited for until that node's lease runs out\n"
	"(--takeover wait), or taken over at once, fencing that node so its late writes\n"
	"never land (--takeover break: for a node that is dead, cut off or frozen).\n"
	"Removal frees the volume's space; it is refused while the volume is mounted.\n"
	"Runs in the background unless -f. SIGTERM stops the plugin and leaves the\n"
	"mounts in place (containers keep running; a restarted plugin takes them up).\n"
	TOOL_OPTIONS_HELP
	"                   (needs osd=rw and mon=rw: it creates and removes volumes)\n"

	"  --socket PATH    the socket Docker calls (default " DEFAULT_SOCKET ")\n"
	"  --state-dir DIR  mount points, basalt-fuse logs and the state that outlives a\n"
	"                   restart (default " DEFAULT_STATE_DIR ")\n"
	"  --takeover wait|break  a volume locked elsewhere: wait for the holder's lease\n"
	"                   to run out (default), or break the lock, fencing the holder\n"
	"  --default-size SIZE  the size of a volume created with no size option\n"
	"                   (default " DEFAULT_SIZE ")\n"
	"  --default-pool POOL  the pool of a volume created with no pool option\n"
	"                   (default rbd)\n"
	"  --fs ext4|xfs    the filesystem made on first use (default ext4)\n"
	"  --log-file PATH  log there (in the background, stderr goes nowhere)\n"
	"  --metrics-addr HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics\n"
	"                   (else metrics_addr = in [docker] or [global]; off: none)\n"
	"  --debug          log every call\n"
	"  -f               stay in the foreground\n"
	"  --version        print the version\n";

struct docker_main_opts {
	struct tool tool;
	const char *socket, *state_dir, *log_file, *default_pool, *fs, *metrics_addr;
	uint64_t default_size;
	bool break_lock, foreground, debug;
	struct metrics_server *metrics; /* NULL: none */
};

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "basalt-docker: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	return 1;
}

/* One option of ours (CH, ARG): 0, or the exit status after saying why. */
static int take_option(struct docker_main_opts *m, int ch, const char *arg)
{
	char why[512];
	switch (ch) {
	case 's': m->socket = arg; return 0;
	case 'S': m->state_dir = arg; return 0;
	case 'l': m->log_file = arg; return 0;
	case 'P': m->default_pool = arg; return 0;
	case 'd': m->debug = true; return 0;
	case 'A': m->metrics_addr = arg; return 0;
	case 'f': m->foreground = true; return 0;
	case 'T':
		if (strcmp(arg, "wait") && strcmp(arg, "break"))
			return fail("--takeover takes wait or break, not '%.40s'", arg) + 1;
		m->break_lock = !strcmp(arg, "break");
		return 0;
	case 'F':
		if (strcmp(arg, "ext4") && strcmp(arg, "xfs"))
			return fail("--fs takes ext4 or xfs, not '%.40s'", arg) + 1;
		m->fs = arg;
		return 0;
	case 'z':
		if (size_parse_range(arg, "--default-size", 1, 1ULL << 60, &m->default_size, why,
				     sizeof(why)))
			return fail("%s", why) + 1;
		return 0;
	case 'h': fputs(usage_text, stdout); return -1;
	case 'v': printf("basalt-docker %s\n", BASALT_VERSION); return -1;
	default: fputs(usage_text, stderr); return 2;
	}
}

/* -1 to go on, else the exit status (--help, --version, a bad option). */
static int parse_options(int argc, char **argv, struct docker_main_opts *m)
{
	static const struct option opts[] = {
		TOOL_LONG_OPTIONS,
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "takeover", required_argument, NULL, 'T' },
		{ "default-size", required_argument, NULL, 'z' },
		{ "default-pool", required_argument, NULL, 'P' },
		{ "fs", required_argument, NULL, 'F' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },
		{ "metrics-addr", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;
	size_parse(DEFAULT_SIZE, &m->default_size, NULL, 0);
	while ((ch = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		if (tool_option(&m->tool, ch, optarg))
			continue;
		if ((rc = take_option(m, ch, optarg)))
			return rc < 0 ? 0 : rc;
	}
	if (optind != argc) {
		fprintf(stderr, "basalt-docker: unexpected argument '%s'\n", argv[optind]);
		fputs(usage_text, stderr);
		return 2;
	}
	return -1;
}

/* mkdir -p PATH (mode 0700 for what it makes): 0, or -errno. */
static int make_path(const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0700) && errno != EEXIST ? -errno : 0;
}

/* ARG as an absolute path (it is passed to basalt-fuse children) into OUT. */
static int absolute(const char *arg, char *out)
{
	return realpath(arg, out) ? 0 : -errno;
}

/* basalt-fuse beside this program (a build tree, /usr/bin), else $PATH's. */
static void find_fuse(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	snprintf(out, len, "basalt-fuse");
	if (n <= 0)
		return;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/basalt-fuse", self);
	if (!access(path, X_OK) && strlen(path) < len)
		memcpy(out, path, strlen(path) + 1);
}

/* Goes to the background; the parent exits once the child says it is
 * ready (0) or has failed (1, after the child said why on stderr). */
static int background(int *ready_fd)
{
	int p[2];
	if (pipe(p))
		return -errno;
	pid_t child = fork();
	if (child < 0)
		return -errno;
	if (child > 0) {
		close(p[1]);
		char ok = 1;
		_exit(read(p[0], &ok, 1) == 1 && ok == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void ready(int fd, const char *socket)
{
	LOG_INFO("serving Docker on %s", socket);
	char status[PATH_MAX + 32];
	snprintf(status, sizeof(status), "serving Docker on %s", socket);
	daemon_notify_ready(status);
	if (fd < 0)
		return;
	char ok = 0;
	if (write(fd, &ok, 1) != 1)
		LOG_WARN("cannot tell the starting process that we are ready");
	close(fd);
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	close(null);
}

/* The config, paths, state and cluster into D: 0, or 1 after saying why. */
static int set_up(struct docker_main_opts *m, struct dk_driver *d, struct dk_cluster *k,
		  char *state_dir, char *conf, char *fuse_bin)
{
	char why[1024];
	if (tool_load(&m->tool, why, sizeof(why)))
		return fail("%s", why);
	if (make_path(m->state_dir) || absolute(m->state_dir, state_dir) || strlen(state_dir) > 3000)
		return fail("cannot use the state directory %s (a directory we can make, its "
			    "path under 3000 bytes)", m->state_dir);
	if (absolute(m->tool.conf, conf))
		return fail("cannot find the config %s", m->tool.conf);
	static char keyring[PATH_MAX];
	if (!realpath(m->tool.keyring_path, keyring))
		return fail("cannot find the keyring %s", m->tool.keyring_path);
	uint64_t lease_ms = 15000;
	if (cfg_get_duration_ms(m->tool.cfg, "mon", "mon_lock_lease", lease_ms, 1000, 3600000,
				&lease_ms) < 0)
		return fail("%s", cfg_error(m->tool.cfg));
	find_fuse(fuse_bin, PATH_MAX);
	if (dk_cluster_open(k, &m->tool, why, sizeof(why)))
		return fail("%s", why);
	*d = (struct dk_driver){ .cluster = k, .state_dir = state_dir,
				 .default_pool = m->default_pool, .default_size = m->default_size };
	d->ap = (struct dk_attach_params){ .fuse_bin = fuse_bin, .conf = conf,
					   .keyring = keyring, .entity = m->tool.name,
					   .state_dir = state_dir, .log_dir = state_dir,
					   .break_lock = m->break_lock,
					   /* the holder's lease, and time to see it run out */
					   .wait_ms = lease_ms + 10000, .mkfs_type = m->fs };
	if (dk_driver_start(d, why, sizeof(why)))
		return fail("%s", why);
	int rc = m->metrics_addr
			 ? metrics_server_start(d->metrics.registry, m->metrics_addr, &m->metrics, why,
						sizeof(why))
			 : metrics_server_start_config(d->metrics.registry, m->tool.cfg, "docker",
						       &m->metrics, why, sizeof(why));
	if (rc)
		return fail("%s", why);
	if (m->metrics)
		LOG_INFO("metrics served on http://%s/metrics", metrics_server_addr(m->metrics));
	return 0;
}

static json_t *call(void *ctx, const char *path, json_t *req, unsigned *status)
{
	return dk_driver_call(ctx, path, req, status);
}

int main(int argc, char **argv)
{
	struct docker_main_opts m = { .socket = DEFAULT_SOCKET, .state_dir = DEFAULT_STATE_DIR,
				      .default_pool = "rbd", .fs = "ext4" };
	tool_init(&m.tool);
	int rc = parse_options(argc, argv, &m);
	if (rc >= 0)
		return rc;
	log_init("docker");
	if (m.debug)
		log_set_level(LOG_LEVEL_DEBUG);
	if (m.log_file && log_set_file(m.log_file))
		return fail("cannot open log file %s", m.log_file);
	char sock_dir[PATH_MAX];
	snprintf(sock_dir, sizeof(sock_dir), "%s", m.socket);
	char *slash = strrchr(sock_dir, '/');
	if (slash && slash != sock_dir) {
		*slash = '\0';
		if (make_path(sock_dir))
			return fail("cannot make the socket's directory %s", sock_dir);
	}
	int ready_fd = -1;
	if (!m.foreground && background(&ready_fd))
		return fail("%s", "cannot go to the background");
	/* Signals wait for the main thread; libmicrohttpd's thread and the
	 * children inherit the mask (attach.c clears it in the children). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct dk_driver d;
	struct dk_cluster k = { 0 };
	static char state_dir[PATH_MAX], conf[PATH_MAX], fuse_bin[PATH_MAX];
	if (set_up(&m, &d, &k, state_dir, conf, fuse_bin))
		return 1;
	struct dk_http *h;
	char why[1024];
	if (dk_http_start(m.socket, call, &d, &h, why, sizeof(why)))
		return fail("%s", why);
	LOG_INFO("takeover %s, first-use filesystem %s, default size %" PRIu64 " bytes in pool %s",
		 m.break_lock ? "break" : "wait", m.fs, m.default_size, m.default_pool);
	ready(ready_fd, m.socket);
	int sig = 0;
	sigwait(&set, &sig);
	LOG_INFO("signal %d: stopping; mounts stay in place for their containers", sig);
	daemon_notify_stopping();
	dk_http_stop(h);
	metrics_server_stop(m.metrics); /* its thread reads the driver's registry */
	dk_driver_stop(&d);
	tool_fini(&m.tool);
	return 0;
}
