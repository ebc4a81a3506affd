/* Logging: levels, timestamps and the daemon's name, to stderr or a file;
 * on a stderr that is systemd's journal, a syslog priority instead of the
 * timestamp. Thread-safe; each line is written with one write(2). */
#ifndef BASALT_COMMON_LOG_H
#define BASALT_COMMON_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the name printed on every line ("osd.1", "mon.a"); borrowed. */
void log_init(const char *daemon_name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *text, enum log_level *level /* out */);
/* Appends to PATH from now on (NULL: back to stderr). 0 or -errno. */
int log_set_file(const char *path);

void log_write(enum log_level level, const char *file, int line,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define LOG_AT(level, ...)                                                     \
	do {                                                                   \
		if ((level) <= log_get_level())                                \
			log_write((level), __FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
