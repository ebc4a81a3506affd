/* basalt-fuse: the cluster's volumes as files under a FUSE mount.
 *
 *   basalt-fuse MOUNTPOINT [-c CONF] [--keyring PATH] [--name ENTITY]
 *               [--volume NAME] [--break-lock] [-o OPTIONS] [-f]
 *               [--log-file PATH] [--debug]
 *
 * Threads: libfuse's workers read requests from the kernel and post them
 * to the main thread, which runs the libbasalt client's loop and answers.
 * SIGTERM or SIGINT unmounts (lazily: files still open, such as a loop
 * device over a volume, are served until they close) and the process
 * exits once the kernel ends the session; a second signal exits at once. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/cluster/tool.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/number.h"
#include "common/version.h"
#include "fuse_fs.h"

/* Where fusermount3 reads whether users may ask for allow_other. */
#define FUSE_CONF_PATH "/etc/fuse.conf"

static const char usage_text[] =
	"usage: basalt-fuse MOUNTPOINT [-c CONF] [--keyring PATH] [--name ENTITY]\n"
	"                   [--volume NAME] [--break-lock] [-o OPTIONS] [-f]\n"
	"                   [--log-file PATH] [--debug] [--metrics-addr HOST:PORT]\n"
	"Mounts the cluster's volumes as files: MOUNTPOINT/volumes/NAME is volume NAME,\n"
	"a regular file of the volume's size (read, write, fsync, fallocate punch-hole\n"
	"and zero-range, SEEK_DATA/SEEK_HOLE). Volumes are created, resized and removed\n"
	"with the basalt command, not through the mount. A file opened for writing\n"
	"takes the volume's exclusive lock until its last writer closes; a volume\n"
	"locked by another client cannot be opened for writing (EBUSY; the log names\n"
	"the holder); reading needs no lock. du shows the bytes written to a volume\n"
	"(counted from its pool's listing, at most about 10 s old). Put a filesystem\n"
	"on a volume with mkfs and mount -o loop. MOUNTPOINT/snapshots/VOL@SNAP is\n"
	"snapshot SNAP of volume VOL, read-only (EROFS), there from basalt snap create\n"
	"to basalt snap rm; du shows what reading it returns. MOUNTPOINT must be a\n"
	"directory that is not on a basalt-fuse mount.\n"
	"Only the user who mounts may enter the mount, unless -o allow_other; the\n"
	"kernel checks each file's owner and mode (-o uid=, gid=, umask=) against\n"
	"the caller (default_permissions is always on).\n"
	"Runs in the background unless -f; SIGTERM unmounts (lazily: open files are\n"
	"served until they close) and exits.\n"
	TOOL_OPTIONS_HELP
	"                   (writing needs osd=rw)\n"
	"  --volume NAME    expose this volume only\n"
	"  --break-lock     take locks over from their holders, fencing them (the OSDs\n"
	"                   refuse what they send from then on): for when the holder's\n"
	"                   server is dead or cut off\n"
	"  -o OPTIONS       mount options, separated by commas:\n"
	"                     ro           read-only (no locks)\n"
	"                     uid=N,gid=N  the owner of every file and directory\n"
	"                                  (default: the mounting user and group)\n"
	"                     umask=OCTAL  mode bits to clear: directories are 0777,\n"
	"                                  volumes 0666 (ro: 0444), snapshots 0444,\n"
	"                                  less it (default 077: 0700, 0600, 0400)\n"
	"                     allow_other  let other users in, as the modes allow;\n"
	"                                  for a user other than root, /etc/fuse.conf\n"
	"                                  needs a line user_allow_other\n"
	"                   and the other FUSE options of mount.fuse3(8)\n"
	"  -f               stay in the foreground\n"
	"  --log-file PATH  log there (in the background, stderr goes nowhere)\n"
	"  --debug          log every request at debug level\n"
	"  --metrics-addr HOST:PORT  serve Prometheus metrics on\n"
	"                   http://HOST:PORT/metrics (HOST an IPv4 address, [IPv6]\n"
	"                   or a name; else metrics_addr = in [fuse] or [global];\n"
	"                   default: none)\n"
	"  --version        print the version\n";

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "basalt-fuse: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	return 1;
}

struct session {
	struct fuse_session *se;
	struct io_loop *loop;
	atomic_bool ended;
	int rc;
};

/* The FUSE thread: its workers run until the kernel ends the session. */
static void *fuse_thread(void *arg)
{
	struct session *s = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* signals go to the main thread */
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	s->rc = fuse_session_loop_mt(s->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	atomic_store(&s->ended, true);
	io_loop_stop(s->loop);
	return NULL;
}

/* Detaches the mount without ending the session (fuse_session_unmount
 * would close the device too): open files keep working. */
static void detach(const char *mountpoint)
{
	if (geteuid() == 0) {
		if (umount2(mountpoint, MNT_DETACH))
			LOG_WARN("cannot unmount %s: %s", mountpoint, strerror(errno));
		return;
	}
	pid_t child = fork();
	if (child == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", mountpoint, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		LOG_WARN("cannot unmount %s with fusermount3", mountpoint);
}

/* The basalt-fuse mount DEV is on (its mount point in MNT), from
 * /proc/self/mountinfo: 0, or -ENOENT when DEV is no basalt-fuse mount. */
static int basalt_mount_of(dev_t dev, char *mnt, size_t mnt_len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -ENOENT;
	char line[8192];
	int rc = -ENOENT;
	while (rc && fgets(line, sizeof(line), f)) {
		unsigned major, minor;
		char point[4096];
		const char *sep = strstr(line, " - ");
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor, point) != 3 || !sep)
			continue;
		if (strncmp(sep + 3, "fuse.basalt ", 12) || makedev(major, minor) != dev)
			continue;
		snprintf(mnt, mnt_len, "%s", point);
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* ARG as a mount point: an existing directory that is not on a
 * basalt-fuse mount (stacked, the new mount would hide the old one's
 * volumes, and the old one's files under it). Its real path into OUT. */
static int check_mountpoint(const char *arg, char *out /* PATH_MAX */)
{
	struct stat st;
	if (!realpath(arg, out) || stat(out, &st)) {
		fprintf(stderr, "basalt-fuse: cannot use the mount point %s: %s\n", arg,
			strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "basalt-fuse: cannot use the mount point %s: %s (give a directory)\n",
			arg, strerror(ENOTDIR));
		return 1;
	}
	char mnt[4096];
	if (!basalt_mount_of(st.st_dev, mnt, sizeof(mnt))) {
		fprintf(stderr, "basalt-fuse: cannot use the mount point %s: it is on the basalt-fuse "
				"mount %s (unmount that first, or choose another directory)\n",
			arg, mnt);
		return 1;
	}
	return 0;
}

/* Before going to the background: the config, keyring, monitors and the
 * volume asked for, so that a mistake is reported where it is made. */
static int check_cluster(struct cfg *cfg, const struct bs_client_params *cp, const char *only)
{
	struct bs_sync *s;
	char why[512];
	struct bs_client_params q = *cp;
	q.op_timeout_ms = 15000;
	if (bs_sync_open(cfg, &q, &s, why, sizeof(why)))
		return fail("%s", why);
	int rc = 0;
	if (only && !map_volume_by_name(bs_sync_map(s), only))
		rc = fail("no volume named '%s' (basalt volume ls lists them)", only);
	bs_sync_close(s);
	return rc;
}

/* What the command line asked for. */
struct fuse_main_opts {
	struct tool tool;
	struct fuse_fs_params fp;
	const char *log_file;
	bool foreground, debug, allow_other;
	const char *metrics_addr;
	char *mount_opts; /* -o options for libfuse, joined with commas; caller frees */
	char mountpoint[PATH_MAX];
};

/* Appends OPT to M's options for libfuse: 0, or -ENOMEM. */
static int add_mount_opt(struct fuse_main_opts *m, const char *opt)
{
	size_t old = m->mount_opts ? strlen(m->mount_opts) : 0;
	char *o = realloc(m->mount_opts, old + strlen(opt) + 2);
	if (!o)
		return -ENOMEM;
	snprintf(o + old, strlen(opt) + 2, "%s%s", old ? "," : "", opt);
	m->mount_opts = o;
	return 0;
}

/* -o umask=TEXT: octal digits, at most 0777. 0, or -EINVAL. */
static int parse_umask(const char *text, mode_t *out)
{
	unsigned v = 0;
	const char *p = text;
	for (; *p >= '0' && *p <= '7' && v <= 0777; p++)
		v = v * 8 + (unsigned)(*p - '0');
	if (p == text || *p || v > 0777)
		return -EINVAL;
	*out = (mode_t)v;
	return 0;
}

/* -o uid=TEXT or gid=TEXT (OPT is the whole option): a number below
 * 2^32 - 1 (that one means "no id" to the kernel). 0, or 2 after
 * saying why. */
static int parse_id(const char *opt, uint32_t *out)
{
	char what[16], why[256];
	uint64_t v;
	snprintf(what, sizeof(what), "-o %.3s", opt);
	if (number_parse_u64(opt + 4, what, 0, UINT32_MAX - 1, &v, why, sizeof(why))) {
		fail("%s", why);
		return 2;
	}
	*out = (uint32_t)v;
	return 0;
}

/* One option OPT of -o: uid=, gid= and umask= are ours; the rest goes
 * to libfuse (ro and allow_other noted too; default_permissions is
 * always there). 0, or the exit status after saying why. */
static int take_mount_opt(struct fuse_main_opts *m, const char *opt)
{
	uint32_t id;
	if (!strncmp(opt, "uid=", 4) || !strncmp(opt, "gid=", 4)) {
		if (parse_id(opt, &id))
			return 2;
		if (opt[0] == 'u')
			m->fp.uid = (uid_t)id;
		else
			m->fp.gid = (gid_t)id;
		return 0;
	}
	if (!strncmp(opt, "umask=", 6)) {
		if (!parse_umask(opt + 6, &m->fp.umask))
			return 0;
		fail("-o umask takes an octal mode from 0 to 0777 (such as 027), not '%.40s'", opt + 6);
		return 2;
	}
	if (!*opt || !strcmp(opt, "default_permissions"))
		return 0;
	if (!strcmp(opt, "ro"))
		m->fp.read_only = true; /* ours as well as the kernel's */
	if (!strcmp(opt, "allow_other"))
		m->allow_other = true;
	return add_mount_opt(m, opt) ? fail("%s", "out of memory") : 0;
}

/* -o TEXT: options separated by commas. 0, or the exit status. */
static int take_mount_opts(struct fuse_main_opts *m, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		return fail("%s", "out of memory");
	int rc = 0;
	for (char *opt = strtok_r(copy, ",", &save); opt && !rc; opt = strtok_r(NULL, ",", &save))
		rc = take_mount_opt(m, opt);
	free(copy);
	return rc;
}

/* Whether PATH (fuse.conf) lets users other than root mount with
 * allow_other, read as fusermount3 reads it: a line "user_allow_other"
 * ending in a newline, blanks around it and a '#' comment aside. */
static bool fuse_conf_allows_other(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[256];
	bool yes = false;
	while (!yes && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		if (!len || line[len - 1] != '\n')
			continue;
		line[strcspn(line, "#")] = '\0';
		char *s = line, *end = line + strlen(line);
		while (isspace((unsigned char)*s))
			s++;
		while (end > s && isspace((unsigned char)end[-1]))
			end--;
		*end = '\0';
		yes = !strcmp(s, "user_allow_other");
	}
	fclose(f);
	return yes;
}

/* Returns -1 to go on, else the exit status (--help, --version, a bad
 * option or mount point). */
static int parse_options(int argc, char **argv, struct fuse_main_opts *m)
{
	static const struct option opts[] = {
		TOOL_LONG_OPTIONS,
		{ "volume", required_argument, NULL, 'V' },
		{ "break-lock", no_argument, NULL, 'b' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },
		{ "metrics-addr", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;
	while ((ch = getopt_long(argc, argv, "c:o:fh", opts, NULL)) != -1) {
		if (tool_option(&m->tool, ch, optarg))
			continue;
		switch (ch) {
		case 'V': m->fp.only = optarg; break;
		case 'b': m->fp.break_lock = true; break;
		case 'l': m->log_file = optarg; break;
		case 'd': m->debug = true; break;
		case 'A': m->metrics_addr = optarg; break;
		case 'f': m->foreground = true; break;
		case 'o':
			if ((rc = take_mount_opts(m, optarg)))
				return rc;
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-fuse %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (m->allow_other && geteuid() != 0 && !fuse_conf_allows_other(FUSE_CONF_PATH))
		return fail("-o allow_other: users other than root may use it only when %s has "
			    "a line 'user_allow_other' (see fuse(8))", FUSE_CONF_PATH);
	return check_mountpoint(argv[optind], m->mountpoint) ? 1 : -1;
}

/* Mounts FS on M's mount point into S->se, then goes to the background
 * (before any thread or ring exists). 0, or 1 after saying why. */
static int mount_session(struct fuse_main_opts *m, const char *argv0, struct fuse_fs *fs,
			 struct session *s)
{
	char base_opts[4096];
	snprintf(base_opts, sizeof(base_opts), "fsname=basalt,subtype=basalt,default_permissions%s%s",
		 m->mount_opts ? "," : "", m->mount_opts ? m->mount_opts : "");
	char *fargv[4] = { (char *)argv0, "-o", base_opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	s->se = fuse_session_new(&args, &fuse_fs_ops, sizeof(fuse_fs_ops), fs);
	fuse_opt_free_args(&args);
	if (!s->se)
		return fail("%s", "bad mount options (see mount.fuse3(8))");
	if (fuse_session_mount(s->se, m->mountpoint)) {
		fuse_session_destroy(s->se);
		return fail("cannot mount on %s", m->mountpoint);
	}
	if (fuse_daemonize(m->foreground)) {
		fuse_session_unmount(s->se);
		fuse_session_destroy(s->se);
		return fail("%s", "cannot go to the background");
	}
	return 0;
}

/* The metrics registry, and the socket of --metrics-addr or the
 * config's metrics_addr ([fuse], then [global]) bound now, before the
 * fork, so a bad address or a port in use is said on stderr (the thread
 * starts in start_serving). 0, or 1 after saying why. */
static int metrics_bind(struct fuse_main_opts *m, struct metrics_registry **reg,
			struct metrics_server **srv)
{
	char why[1024];
	if (metrics_registry_create(reg))
		return fail("%s", "out of memory");
	m->fp.metrics = *reg;
	int rc = m->metrics_addr ? metrics_server_bind(*reg, m->metrics_addr, srv, why, sizeof(why))
				 : metrics_server_bind_config(*reg, m->tool.cfg, "fuse", srv, why,
							      sizeof(why));
	if (rc)
		fprintf(stderr, "basalt-fuse: %s%s\n", m->metrics_addr ? "--metrics-addr: " : "", why);
	return rc ? 1 : 0;
}

/* In the background: the metrics thread, the loop, the client and its
 * first map, then the FUSE thread. 0, or -errno (logged). */
static int start_serving(struct fuse_main_opts *m, const struct bs_client_params *cp,
			 struct fuse_fs *fs, struct session *s, struct bs_client **client,
			 pthread_t *thread, struct metrics_server *metrics)
{
	char why[1024];
	int rc = metrics ? metrics_server_run(metrics, why, sizeof(why)) : 0;
	if (rc)
		LOG_ERROR("%s", why);
	else if (metrics)
		LOG_INFO("metrics served on http://%s/metrics", metrics_server_addr(metrics));
	if (!rc)
		rc = io_loop_create_uring(NULL, &s->loop);
	if (rc)
		LOG_ERROR("cannot set up io_uring: %s", strerror(-rc));
	if (!rc && (rc = bs_client_create(s->loop, m->tool.cfg, cp, client, why, sizeof(why))))
		LOG_ERROR("%s", why);
	if (!rc && (rc = bs_client_wait_map(*client, 30000, why, sizeof(why))))
		LOG_ERROR("%s", why);
	if (rc)
		return rc;
	fuse_fs_attach(fs, s->loop, *client);
	/* The first counts for du, for at most 3 s: until then a volume's
	 * st_blocks is its whole size. */
	uint64_t end = io_now_ns(s->loop) + IO_MS(3000);
	while (fuse_fs_busy(fs) && io_now_ns(s->loop) < end)
		io_loop_run_once(s->loop, (int64_t)IO_MS(50));
	return -pthread_create(thread, NULL, fuse_thread, s);
}

/* Serves until a signal; unmounts lazily (open files are served until
 * they close), answers what still runs and gives the locks back. */
static void serve_and_stop(struct fuse_main_opts *m, struct fuse_fs *fs, struct session *s,
			   struct bs_client *client, pthread_t thread)
{
	daemon_run(s->loop, 0);
	if (!atomic_load(&s->ended)) {
		LOG_INFO("unmounting %s; files still open are served until they close",
			 m->mountpoint);
		detach(m->mountpoint);
		daemon_run(s->loop, 0); /* the session ends, or a second signal */
	}
	if (atomic_load(&s->ended)) {
		pthread_join(thread, NULL);
	} else {
		LOG_WARN("a second signal: exiting with files still open");
		fuse_session_exit(s->se);
	}
	uint64_t end = io_now_ns(s->loop) + IO_MS(5000);
	while (fuse_fs_busy(fs) && io_now_ns(s->loop) < end)
		io_loop_run_once(s->loop, (int64_t)IO_MS(50));
	if (!fuse_fs_busy(fs))
		fuse_fs_destroy(fs);
	bs_lock_wait_released(client, 5000);
	LOG_INFO("stopped");
	if (atomic_load(&s->ended)) {
		fuse_session_unmount(s->se);
		fuse_session_destroy(s->se);
	}
}

int main(int argc, char **argv)
{
	struct fuse_main_opts m = {
		.fp = { .uid = getuid(), .gid = getgid(), .umask = 077 },
	};
	tool_init(&m.tool);
	int rc = parse_options(argc, argv, &m);
	if (rc >= 0)
		return rc;
	log_init("fuse");
	if (m.debug)
		log_set_level(LOG_LEVEL_DEBUG);
	if (m.log_file && log_set_file(m.log_file))
		return fail("cannot open log file %s", m.log_file);
	char why[1024];
	if (tool_load(&m.tool, why, sizeof(why)))
		return fail("%s", why);
	char kr_abs[PATH_MAX];
	if (realpath(m.tool.keyring_path, kr_abs)) /* the daemon runs in / */
		snprintf(m.tool.keyring_path, sizeof(m.tool.keyring_path), "%s", kr_abs);
	struct bs_client_params cp = { .entity = m.tool.name, .keyring = m.tool.keyring_path };
	if (check_cluster(m.tool.cfg, &cp, m.fp.only))
		return 1;
	struct fuse_fs *fs = NULL;
	struct session s = { 0 };
	atomic_init(&s.ended, false);
	struct metrics_registry *metrics = NULL;
	struct metrics_server *metrics_srv = NULL;
	if (metrics_bind(&m, &metrics, &metrics_srv))
		return 1;
	if (fuse_fs_create(&m.fp, &fs))
		return fail("%s", "out of memory");
	if (mount_session(&m, argv[0], fs, &s))
		return 1;
	struct bs_client *client = NULL;
	pthread_t thread;
	if (start_serving(&m, &cp, fs, &s, &client, &thread, metrics_srv)) {
		fuse_session_unmount(s.se);
		fuse_session_destroy(s.se);
		fuse_fs_destroy(fs);
		bs_client_destroy(client);
		if (s.loop)
			io_loop_destroy(s.loop);
		metrics_server_stop(metrics_srv);
		metrics_registry_free(metrics);
		tool_fini(&m.tool);
		return 1;
	}
	LOG_INFO("mounted on %s%s%s%s", m.mountpoint, m.fp.read_only ? " read-only" : "",
		 m.fp.only ? ", volume " : "", m.fp.only ? m.fp.only : "");
	char status[PATH_MAX + 32];
	snprintf(status, sizeof(status), "mounted on %s", m.mountpoint);
	daemon_notify_ready(status);
	serve_and_stop(&m, fs, &s, client, thread);
	bs_client_destroy(client);
	io_loop_destroy(s.loop);
	metrics_server_stop(metrics_srv);
	metrics_registry_free(metrics);
	tool_fini(&m.tool);
	free(m.mount_opts);
	return 0;
}
