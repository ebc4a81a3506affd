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
#include "common/keyring.h"
#include "common/log.h"
#include "common/version.h"
#include "fuse_fs.h"

static const char usage_text[] =
	"usage: basalt-fuse MOUNTPOINT [-c CONF] [--keyring PATH] [--name ENTITY]\n"
	"                   [--volume NAME] [--break-lock] [-o OPTIONS] [-f]\n"
	"                   [--log-file PATH] [--debug]\n"
	"Mounts the cluster's volumes as files: MOUNTPOINT/volumes/NAME is volume NAME,\n"
	"a regular file of the volume's size (read, write, fsync, fallocate punch-hole\n"
	"and zero-range, SEEK_DATA/SEEK_HOLE). Volumes are created, resized and removed\n"
	"with the basalt command, not through the mount. A file opened for writing\n"
	"takes the volume's exclusive lock until its last writer closes; a volume\n"
	"locked by another client cannot be opened for writing (EBUSY; the log names\n"
	"the holder); reading needs no lock. du shows the bytes written to a volume\n"
	"(counted from its pool's listing, at most about 10 s old). Put a filesystem\n"
	"on a volume with mkfs and mount -o loop. MOUNTPOINT must be a directory that\n"
	"is not on a basalt-fuse mount.\n"
	"Runs in the background unless -f; SIGTERM unmounts (lazily: open files are\n"
	"served until they close) and exits.\n"
	"  -c CONF          config (or BASALT_CONF)\n"
	"  --keyring PATH   keyring (default: keyring = in [global], or beside CONF)\n"
	"  --name ENTITY    the key to use (default client.admin; writing needs osd=rw)\n"
	"  --volume NAME    expose this volume only\n"
	"  --break-lock     take locks over from their holders, fencing them (the OSDs\n"
	"                   refuse what they send from then on): for when the holder's\n"
	"                   server is dead or cut off\n"
	"  -o OPTIONS       mount options: ro (read-only, no locks), allow_other, and\n"
	"                   the other FUSE options of mount.fuse3(8)\n"
	"  -f               stay in the foreground\n"
	"  --log-file PATH  log there (in the background, stderr goes nowhere)\n"
	"  --debug          log every request at debug level\n"
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

static bool have_map(void *arg)
{
	return bs_client_have_map(arg);
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

int main(int argc, char **argv)
{
	const char *conf = NULL, *keyring = NULL, *name = "client.admin", *log_file = NULL;
	struct fuse_fs_params fp = { 0 };
	bool foreground = false, debug = false;
	char *mount_opts = NULL;
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'n' },
		{ "volume", required_argument, NULL, 'V' },
		{ "break-lock", no_argument, NULL, 'b' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:o:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'k': keyring = optarg; break;
		case 'n': name = optarg; break;
		case 'V': fp.only = optarg; break;
		case 'b': fp.break_lock = true; break;
		case 'l': log_file = optarg; break;
		case 'd': debug = true; break;
		case 'f': foreground = true; break;
		case 'o': {
			size_t old = mount_opts ? strlen(mount_opts) : 0;
			char *m = realloc(mount_opts, old + strlen(optarg) + 2);
			if (!m)
				return fail("%s", "out of memory");
			snprintf(m + old, strlen(optarg) + 2, "%s%s", old ? "," : "", optarg);
			mount_opts = m;
			break;
		}
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-fuse %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage_text, stderr);
		return 2;
	}
	char mountpoint[PATH_MAX];
	if (check_mountpoint(argv[optind], mountpoint))
		return 1;
	/* "ro" is ours as well as the kernel's. */
	for (char *o = mount_opts, *end; o && *o; o = end ? end + 1 : o + strlen(o)) {
		end = strchr(o, ',');
		if ((end ? (size_t)(end - o) : strlen(o)) == 2 && !strncmp(o, "ro", 2))
			fp.read_only = true;
		if (!end)
			break;
	}
	log_init("fuse");
	if (debug)
		log_set_level(LOG_LEVEL_DEBUG);
	if (log_file && log_set_file(log_file))
		return fail("cannot open log file %s", log_file);
	conf = cfg_pick_path(conf);
	if (!conf)
		return fail("%s", "no config: give -c CONF or set BASALT_CONF");
	struct cfg *cfg;
	char why[512], kr_path[4096];
	if (cfg_load(conf, &cfg, why, sizeof(why)))
		return fail("%s", why);
	keyring_path_for_config(cfg, keyring, conf, kr_path, sizeof(kr_path));
	char kr_abs[PATH_MAX];
	if (realpath(kr_path, kr_abs)) /* the daemon runs in / */
		snprintf(kr_path, sizeof(kr_path), "%s", kr_abs);
	struct bs_client_params cp = { .entity = name, .keyring = kr_path };
	if (check_cluster(cfg, &cp, fp.only))
		return 1;

	/* Mount, then go to the background: before any thread or ring. */
	char *fargv[4] = { argv[0], NULL, NULL, NULL };
	int fargc = 1;
	char base_opts[4096];
	snprintf(base_opts, sizeof(base_opts), "fsname=basalt,subtype=basalt,default_permissions%s%s",
		 mount_opts ? "," : "", mount_opts ? mount_opts : "");
	fargv[fargc++] = "-o";
	fargv[fargc++] = base_opts;
	struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);
	struct fuse_fs *fs = NULL;
	struct session s = { 0 };
	atomic_init(&s.ended, false);
	if (fuse_fs_create(&fp, &fs))
		return fail("%s", "out of memory");
	s.se = fuse_session_new(&args, &fuse_fs_ops, sizeof(fuse_fs_ops), fs);
	fuse_opt_free_args(&args);
	if (!s.se)
		return fail("%s", "bad mount options (see mount.fuse3(8))");
	if (fuse_session_mount(s.se, mountpoint)) {
		fuse_session_destroy(s.se);
		return fail("cannot mount on %s", mountpoint);
	}
	if (fuse_daemonize(foreground)) {
		fuse_session_unmount(s.se);
		fuse_session_destroy(s.se);
		return fail("%s", "cannot go to the background");
	}

	int rc = io_loop_create_uring(NULL, &s.loop);
	struct bs_client *client = NULL;
	if (rc)
		LOG_ERROR("cannot set up io_uring: %s", strerror(-rc));
	if (!rc && (rc = bs_client_create(s.loop, cfg, &cp, &client, why, sizeof(why))))
		LOG_ERROR("%s", why);
	if (!rc && io_loop_run_until(s.loop, have_map, client))
		rc = -ETIMEDOUT;
	pthread_t thread;
	if (!rc) {
		fuse_fs_attach(fs, s.loop, client);
		/* The first counts for du, for at most 3 s: until then a
		 * volume's st_blocks is its whole size. */
		uint64_t end = io_now_ns(s.loop) + IO_MS(3000);
		while (fuse_fs_busy(fs) && io_now_ns(s.loop) < end)
			io_loop_run_once(s.loop, (int64_t)IO_MS(50));
		rc = -pthread_create(&thread, NULL, fuse_thread, &s);
	}
	if (rc) {
		fuse_session_unmount(s.se);
		fuse_session_destroy(s.se);
		fuse_fs_destroy(fs);
		bs_client_destroy(client);
		if (s.loop)
			io_loop_destroy(s.loop);
		cfg_free(cfg);
		return 1;
	}
	LOG_INFO("mounted on %s%s%s%s", mountpoint, fp.read_only ? " read-only" : "",
		 fp.only ? ", volume " : "", fp.only ? fp.only : "");

	daemon_run(s.loop, 0);
	if (!atomic_load(&s.ended)) {
		LOG_INFO("unmounting %s; files still open are served until they close",
			 mountpoint);
		detach(mountpoint);
		daemon_run(s.loop, 0); /* the session ends, or a second signal */
	}
	if (atomic_load(&s.ended)) {
		pthread_join(thread, NULL);
	} else {
		LOG_WARN("a second signal: exiting with files still open");
		fuse_session_exit(s.se);
	}
	/* Answer what is still running, give the locks back. */
	uint64_t end = io_now_ns(s.loop) + IO_MS(5000);
	while (fuse_fs_busy(fs) && io_now_ns(s.loop) < end)
		io_loop_run_once(s.loop, (int64_t)IO_MS(50));
	if (!fuse_fs_busy(fs))
		fuse_fs_destroy(fs);
	bs_lock_wait_released(client, 5000);
	LOG_INFO("stopped");
	if (atomic_load(&s.ended)) {
		fuse_session_unmount(s.se);
		fuse_session_destroy(s.se);
	}
	bs_client_destroy(client);
	io_loop_destroy(s.loop);
	cfg_free(cfg);
	free(mount_opts);
	return 0;
}
