/* Logging backend: formats a line into a stack buffer and writes it with a
 * single write(2) so lines from several threads never interleave. When
 * stderr is systemd's journal (JOURNAL_STREAM names it), lines carry the
 * level as a syslog priority prefix and no timestamp: journald adds its
 * own and filters on the priority (journalctl -p warning). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "assert.h"

static const char *log_name = "basalt";
static int log_fd = STDERR_FILENO;
static enum log_level log_level = LOG_LEVEL_INFO;
static bool stderr_is_journal;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priorities[] = { 3, 4, 6, 7 };

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stdout or
 * stderr goes to the journal; a stderr redirected elsewhere by a child's
 * shell no longer matches (systemd.exec(5)). */
static bool journal_stream(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_init(const char *daemon_name)
{
	log_name = daemon_name;
	stderr_is_journal = journal_stream();
	const char *env = getenv("BASALT_LOG_LEVEL");
	enum log_level level;
	if (env && log_parse_level(env, &level) == 0)
		log_level = level;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_parse_level(const char *text, enum log_level *level)
{
	for (size_t i = 0; i < BASALT_ARRAY_SIZE(level_names); i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_set_file(const char *path)
{
	int fd = STDERR_FILENO;
	if (path) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
	}
	int old = log_fd;
	log_fd = fd;
	if (old != STDERR_FILENO)
		close(old);
	return 0;
}

void log_write(enum log_level level, const char *file, int line,
	       const char *fmt, ...)
{
	char buf[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	int n;
	if (log_fd == STDERR_FILENO && stderr_is_journal)
		n = snprintf(buf, sizeof(buf), "<%d>%s %s %s:%d: ", level_priorities[level],
			     log_name, level_names[level], base, line);
	else
		n = snprintf(buf, sizeof(buf),
			     "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s %s:%d: ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
			     log_name, level_names[level], base, line);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	ssize_t unused = write(log_fd, buf, (size_t)n);
	(void)unused;
}

void basalt_assert_fail(const char *expr, const char *file, int line,
			const char *func)
{
	log_write(LOG_LEVEL_ERROR, file, line, "assertion failed in %s: %s",
		  func, expr);
	abort();
}
