/* basalt-docker's block path (see attach.h): fuse child, lock, loop
 * device, filesystem probe, first-use format, mount; and the reverse. */
#include "attach.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"

#define FUSE_START_MS 20000 /* basalt-fuse: config, monitors, first map, mount */
#define FUSE_STOP_MS 15000  /* it gives the lock back before it exits */
#define LOCK_RETRY_MS 1000

uint64_t dk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
	return dk_now_ns() / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Whether process PID has ended (reaped if it is our child). */
static bool process_gone(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, WNOHANG) == pid)
		return true;
	char path[64], stat[256] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	bool zombie = fgets(stat, sizeof(stat), f) && strstr(stat, ") Z ");
	fclose(f);
	return zombie;
}

/* Runs ARGV, its output (stdout and stderr) into OUT: its exit status,
 * or -errno when it could not run. */
static int run(char *const argv[], char *out, size_t out_len)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	pid_t child = fork();
	if (child == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	size_t used = 0;
	ssize_t n;
	while ((n = read(pipefd[0], out + used, out_len - 1 - used)) > 0 && used < out_len - 1)
		used += (size_t)n;
	out[used] = '\0';
	while (used && (out[used - 1] == '\n' || out[used - 1] == ' '))
		out[--used] = '\0';
	close(pipefd[0]);
	int status = 0;
	if (child < 0 || waitpid(child, &status, 0) < 0)
		return -ECHILD;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* This process's environment without the variable PREFIX ("NAME=")
 * starts: a new array of borrowed strings (caller frees the array), or
 * NULL when out of memory. */
static char **env_without(const char *prefix)
{
	size_t n = 0, kept = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 1, sizeof(*envp));
	for (size_t i = 0; envp && i < n; i++)
		if (strncmp(environ[i], prefix, strlen(prefix)))
			envp[kept++] = environ[i];
	return envp;
}

/* Starts basalt-fuse on A->fuse_dir serving volume NAME only, in a session
 * of its own (a signal to the plugin's terminal or group must not take the
 * containers' data away), and waits for the volume's file. */
static int fuse_start(const struct dk_attach_params *p, const char *name, struct dk_attach *a,
		      char *file, size_t file_len, char *why, size_t why_len)
{
	char log_path[PATH_MAX];
	snprintf(log_path, sizeof(log_path), "%.3000s/fuse.%.63s.log", p->log_dir, name);
	snprintf(file, file_len, "%.3100s/volumes/%.63s", a->fuse_dir, name);
	char *argv[20];
	int n = 0;
	argv[n++] = (char *)p->fuse_bin;
	argv[n++] = a->fuse_dir;
	argv[n++] = "-f";
	argv[n++] = "--volume";
	argv[n++] = (char *)name;
	argv[n++] = "-c";
	argv[n++] = (char *)p->conf;
	argv[n++] = "--keyring";
	argv[n++] = (char *)p->keyring;
	argv[n++] = "--name";
	argv[n++] = (char *)p->entity;
	argv[n++] = "--log-file";
	argv[n++] = log_path;
	if (p->break_lock)
		argv[n++] = "--break-lock";
	/* One metrics_addr in [fuse] or [global] cannot serve every child:
	 * the plugin's own metrics count its volumes. */
	argv[n++] = "--metrics-addr";
	argv[n++] = METRICS_ADDR_OFF;
	argv[n] = NULL;
	/* Without NOTIFY_SOCKET: the child's READY=1 is not the plugin's (made
	 * before the fork: the child may only exec). */
	char **envp = env_without("NOTIFY_SOCKET=");
	if (!envp)
		return -ENOMEM;
	pid_t child = fork();
	if (child == 0) {
		setsid();
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd >= 0 ? fd : null, 1);
		dup2(fd >= 0 ? fd : null, 2);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(argv[0], argv, envp);
		execvpe("basalt-fuse", argv, envp);
		_exit(127);
	}
	free(envp);
	if (child < 0)
		return -errno;
	a->fuse_pid = child;
	struct stat st;
	for (uint64_t end = now_ms() + FUSE_START_MS; now_ms() < end; sleep_ms(50)) {
		if (!stat(file, &st))
			return 0;
		if (process_gone(child)) {
			a->fuse_pid = 0;
			snprintf(why, why_len, "basalt-fuse for volume %s exited at start (see %s)",
				 name, log_path);
			return -EIO;
		}
	}
	snprintf(why, why_len, "basalt-fuse for volume %s did not serve it within %d s (see %s)",
		 name, FUSE_START_MS / 1000, log_path);
	return -ETIMEDOUT;
}

/* Whether process A->fuse_pid is A's basalt-fuse (its command line names
 * A's fuse directory): after a reboot the pid may be someone else's. */
static bool fuse_is_ours(const struct dk_attach *a)
{
	char path[64], cmdline[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)a->fuse_pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
	fclose(f);
	cmdline[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(cmdline + i) + 1)
		if (!strcmp(cmdline + i, a->fuse_dir))
			return true;
	return false;
}

/* Stops A's fuse child (it gives the volume's lock back as it goes). */
static void fuse_stop(struct dk_attach *a)
{
	if (a->fuse_pid <= 0)
		return;
	kill(a->fuse_pid, SIGTERM);
	uint64_t end = now_ms() + FUSE_STOP_MS;
	while (!process_gone(a->fuse_pid) && now_ms() < end)
		sleep_ms(20);
	if (!process_gone(a->fuse_pid)) {
		LOG_WARN("basalt-fuse pid %d did not stop in %d s: killing it", (int)a->fuse_pid,
			 FUSE_STOP_MS / 1000);
		kill(a->fuse_pid, SIGKILL);
		for (int i = 0; i < 100 && !process_gone(a->fuse_pid); i++)
			sleep_ms(20);
	}
	umount2(a->fuse_dir, MNT_DETACH); /* a child killed leaves its mount */
	a->fuse_pid = 0;
}

/* Opens the volume FILE for writing: basalt-fuse takes the lock (or
 * breaks it, fencing the holder). In wait mode a lock held by another
 * client is asked for again until its lease runs out, at most WAIT_MS. */
static int open_locked(const struct dk_attach_params *p, const char *file, int *fd)
{
	uint64_t end = now_ms() + p->wait_ms;
	for (;;) {
		*fd = open(file, O_RDWR | O_CLOEXEC);
		if (*fd >= 0)
			return 0;
		int err = errno;
		if (err != EBUSY || p->break_lock || now_ms() >= end)
			return -err;
		sleep_ms(LOCK_RETRY_MS);
	}
}

/* A free loop device over FILE_FD, detached by the kernel once its last
 * opener closes (after the unmount): its open fd into *LOOP_FD. */
static int loop_attach(int file_fd, struct dk_attach *a, int *loop_fd, char *why, size_t why_len)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		snprintf(why, why_len, "cannot open /dev/loop-control: %s (is the loop module "
				       "loaded?)", strerror(errno));
		return -errno;
	}
	int rc = -EBUSY;
	for (int attempt = 0; attempt < 16 && rc == -EBUSY; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			rc = -errno;
			break;
		}
		snprintf(a->loop_dev, sizeof(a->loop_dev), "/dev/loop%d", n);
		/* Where /dev is not devtmpfs (a container) the node may be missing. */
		if (access(a->loop_dev, F_OK))
			mknod(a->loop_dev, S_IFBLK | 0600, makedev(7, (unsigned)n));
		*loop_fd = open(a->loop_dev, O_RDWR | O_CLOEXEC);
		if (*loop_fd < 0) {
			rc = -errno;
			break;
		}
		/* Direct I/O: the loop device submits asynchronously, many
		 * requests at once, instead of one at a time through the page
		 * cache (basalt-fuse files cache nothing anyway); the kernel
		 * falls back to buffered where it cannot. */
		struct loop_config lc = { .fd = (unsigned)file_fd };
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
		snprintf((char *)lc.info.lo_file_name, sizeof(lc.info.lo_file_name), "basalt");
		rc = ioctl(*loop_fd, LOOP_CONFIGURE, &lc) ? -errno : 0;
		if (rc)
			close(*loop_fd); /* EBUSY: taken meanwhile by someone else */
	}
	close(ctl);
	if (rc)
		snprintf(why, why_len, "cannot set up a loop device: %s", strerror(-rc));
	return rc;
}

/* The filesystem on DEV into TYPE ("" when there is none): 0, or
 * -EMEDIUMTYPE with WHY for something else there (a partition table,
 * signatures that disagree). */
static int probe(const char *dev, char *type, size_t type_len, char *why, size_t why_len)
{
	*type = '\0';
	blkid_probe pr = blkid_new_probe_from_filename(dev);
	if (!pr) {
		snprintf(why, why_len, "cannot probe %s for a filesystem: %s", dev, strerror(errno));
		return -EIO;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, 1);
	int rc = blkid_do_safeprobe(pr);
	const char *value = NULL;
	if (rc == 0 && !blkid_probe_lookup_value(pr, "TYPE", &value, NULL)) {
		snprintf(type, type_len, "%s", value);
	} else if (rc == 0 && !blkid_probe_lookup_value(pr, "PTTYPE", &value, NULL)) {
		snprintf(why, why_len, "it holds a %s partition table, not a filesystem", value);
		rc = -EMEDIUMTYPE;
	} else if (rc == -2) {
		snprintf(why, why_len, "it holds signatures of more than one filesystem");
		rc = -EMEDIUMTYPE;
	} else if (rc < 0) {
		snprintf(why, why_len, "cannot probe %s for a filesystem", dev);
		rc = -EIO;
	} else {
		rc = 0; /* 1: nothing found */
	}
	blkid_free_probe(pr);
	return rc;
}

/* Formats DEV with TYPE, not discarding (a new volume is all holes). */
static int format(const char *dev, const char *type, char *why, size_t why_len)
{
	char tool[32], out[512];
	snprintf(tool, sizeof(tool), "mkfs.%s", type);
	char *ext4[] = { tool, "-q", "-E", "nodiscard", (char *)dev, NULL };
	char *xfs[] = { tool, "-q", "-K", (char *)dev, NULL };
	int rc = run(strcmp(type, "xfs") ? ext4 : xfs, out, sizeof(out));
	if (rc == 0)
		return 0;
	snprintf(why, why_len, "%s %s failed (%d): %s", tool, dev, rc, out);
	return -EIO;
}

/* The filesystem to mount on A->loop_dev: the one there, or a new one when
 * the volume holds no filesystem and was never written. */
static int find_or_make_fs(const struct dk_attach_params *p, const char *name,
			   struct dk_attach *a, bool *formatted, char *why, size_t why_len)
{
	char sub[256] = "";
	int rc = probe(a->loop_dev, a->fs_type, sizeof(a->fs_type), sub, sizeof(sub));
	if (rc == -EMEDIUMTYPE)
		snprintf(why, why_len, "volume %s: %s; refusing to mount or format it", name, sub);
	else if (rc)
		snprintf(why, why_len, "volume %s: %s", name, sub);
	if (rc || *a->fs_type)
		return rc;
	bool has_data = true;
	if ((rc = p->has_data(p->ctx, name, &has_data, why, why_len)))
		return rc;
	if (has_data) {
		snprintf(why, why_len, "volume %s holds data but no filesystem basalt-docker "
				       "recognizes; refusing to format it (copy the data off, or "
				       "remove the volume)", name);
		return -EMEDIUMTYPE;
	}
	LOG_INFO("volume %s: no filesystem and never written: formatting it with %s", name,
		 p->mkfs_type);
	if ((rc = format(a->loop_dev, p->mkfs_type, why, why_len)))
		return rc;
	snprintf(a->fs_type, sizeof(a->fs_type), "%s", p->mkfs_type);
	*formatted = true;
	return 0;
}

/* STATE/fuse/NAME and STATE/mnt/NAME, made if missing. */
static int make_dirs(const struct dk_attach_params *p, const char *name, struct dk_attach *a,
		     char *why, size_t why_len)
{
	char d1[PATH_MAX], d2[PATH_MAX];
	/* main.c keeps STATE_DIR under 3000 bytes; names are under 64 */
	snprintf(d1, sizeof(d1), "%.3000s/fuse", p->state_dir);
	snprintf(d2, sizeof(d2), "%.3000s/mnt", p->state_dir);
	snprintf(a->fuse_dir, sizeof(a->fuse_dir), "%.3010s/%.63s", d1, name);
	snprintf(a->mountpoint, sizeof(a->mountpoint), "%.3010s/%.63s", d2, name);
	const char *dirs[] = { d1, d2, a->fuse_dir, a->mountpoint };
	for (size_t i = 0; i < 4; i++)
		if (mkdir(dirs[i], 0700) && errno != EEXIST) {
			snprintf(why, why_len, "cannot make %s: %s", dirs[i], strerror(errno));
			return -errno;
		}
	umount2(a->fuse_dir, MNT_DETACH); /* left by a child that was killed */
	return 0;
}

int dk_attach(const struct dk_attach_params *p, const char *name, struct dk_attach *a,
	      bool *formatted, char *why, size_t why_len)
{
	char file[PATH_MAX];
	int file_fd = -1, loop_fd = -1;
	memset(a, 0, sizeof(*a));
	*formatted = false;
	int rc = make_dirs(p, name, a, why, why_len);
	if (!rc)
		rc = fuse_start(p, name, a, file, sizeof(file), why, why_len);
	if (!rc && (rc = open_locked(p, file, &file_fd)) && rc != -EBUSY)
		snprintf(why, why_len, "cannot open volume %s for writing: %s", name, strerror(-rc));
	if (!rc)
		rc = loop_attach(file_fd, a, &loop_fd, why, why_len);
	if (file_fd >= 0)
		close(file_fd); /* the loop device holds the file now */
	if (!rc)
		rc = find_or_make_fs(p, name, a, formatted, why, why_len);
	if (!rc && mount(a->loop_dev, a->mountpoint, a->fs_type, 0, NULL)) {
		rc = -errno;
		snprintf(why, why_len, "cannot mount volume %s (%s on %s) on %s: %s", name,
			 a->fs_type, a->loop_dev, a->mountpoint, strerror(errno));
	}
	if (loop_fd >= 0)
		close(loop_fd); /* autoclear: the mount holds it, or it detaches now */
	if (rc)
		fuse_stop(a);
	return rc;
}

int dk_detach(struct dk_attach *a, char *why, size_t why_len)
{
	if (umount2(a->mountpoint, 0) && errno != EINVAL && errno != ENOENT) {
		snprintf(why, why_len, "cannot unmount %s: %s", a->mountpoint, strerror(errno));
		return -errno;
	}
	/* The loop device lets the volume's file go as the unmount ends; the
	 * fuse child's last writer closing gives the lock back. A pid that is
	 * no longer our basalt-fuse (a reboot) is left alone. */
	if (!fuse_is_ours(a))
		a->fuse_pid = 0;
	fuse_stop(a);
	umount2(a->fuse_dir, MNT_DETACH);
	return 0;
}

/* Whether PATH is a mount point, from /proc/self/mountinfo. */
static bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[8192], point[4096];
	bool yes = false;
	while (!yes && fgets(line, sizeof(line), f))
		yes = sscanf(line, "%*u %*u %*u:%*u %*s %4095s", point) == 1 && !strcmp(point, path);
	fclose(f);
	return yes;
}

bool dk_attach_alive(const struct dk_attach *a)
{
	return a->fuse_pid > 0 && !process_gone(a->fuse_pid) && fuse_is_ours(a) &&
	       is_mounted(a->mountpoint);
}
