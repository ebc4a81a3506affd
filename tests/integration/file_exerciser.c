/* An fsx-style exerciser for a volume file (basalt-fuse): random reads,
 * writes, punched holes, zeroed ranges, truncates and SEEK_DATA/SEEK_HOLE
 * against an in-memory copy of what the file must hold; any difference
 * stops it with the last operations.
 *
 *   file_exerciser FILE [--ops N] [--seed S] [--max-len BYTES]
 *
 * Offsets and lengths are anything (unaligned ones included). The file's
 * size is fixed (a volume changes size only through basalt volume
 * resize): a truncate to the same size must succeed, and to any other
 * size must fail with EPERM and change nothing. The whole file is
 * compared every 10,000 operations and at the end. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HISTORY 32

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return n ? next() % n : 0;
}

static char history[HISTORY][96];
static uint64_t n_done;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(history[n_done % HISTORY], sizeof(history[0]), fmt, ap);
	va_end(ap);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "file_exerciser: after %" PRIu64 " operations: ", n_done);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nlast operations, oldest first:\n");
	for (uint64_t i = n_done >= HISTORY ? n_done - HISTORY + 1 : 0; i <= n_done; i++)
		fprintf(stderr, "  %6" PRIu64 " %s\n", i, history[i % HISTORY]);
	exit(1);
}

static void compare(const uint8_t *got, const uint8_t *want, uint64_t off, size_t len,
		    const char *what)
{
	if (!memcmp(got, want, len))
		return;
	size_t i = 0;
	while (got[i] == want[i])
		i++;
	die("%s: byte %" PRIu64 " is 0x%02x, expected 0x%02x", what, off + i, got[i], want[i]);
}

static void full_compare(int fd, const uint8_t *model, uint64_t size, uint8_t *buf)
{
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t len = size - off < (1 << 20) ? size - off : 1 << 20;
		ssize_t r = pread(fd, buf, len, (off_t)off);
		if (r != (ssize_t)len)
			die("full read at %" PRIu64 ": %zd (%s)", off, r, strerror(errno));
		compare(buf, model + off, off, len, "full compare");
	}
}

static bool zeros(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t ops = 100000, seed = 1, max_len = 256 << 10;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--max-len") && i + 1 < argc)
			max_len = strtoull(argv[++i], NULL, 10);
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: file_exerciser FILE [--ops N] [--seed S] [--max-len B]\n");
			return 2;
		}
	}
	if (!path || !max_len) {
		fprintf(stderr, "usage: file_exerciser FILE [--ops N] [--seed S] [--max-len B]\n");
		return 2;
	}
	rng = seed * 0x9E3779B97F4A7C15ULL | 1;
	int fd = open(path, O_RDWR);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die("cannot open %s: %s", path, strerror(errno));
	uint64_t size = (uint64_t)st.st_size;
	uint8_t *model = malloc(size), *buf = malloc(max_len > (1 << 20) ? max_len : 1 << 20);
	uint8_t *data = malloc(max_len);
	if (!model || !buf || !data || !size)
		die("out of memory, or an empty file");
	note("initial read of %" PRIu64 " bytes", size);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t len = size - off < (1 << 20) ? size - off : 1 << 20;
		if (pread(fd, model + off, len, (off_t)off) != (ssize_t)len)
			die("initial read at %" PRIu64 ": %s", off, strerror(errno));
	}
	uint64_t counts[8] = { 0 };
	for (n_done = 1; n_done <= ops; n_done++) {
		uint64_t r = below(100);
		/* Lengths: mostly small, sometimes up to max_len; offsets
		 * aligned to 4 KiB half of the time. */
		uint64_t len = below(4) ? 1 + below(max_len / 16) : 1 + below(max_len);
		uint64_t off = below(size);
		if (below(2)) {
			off &= ~4095ULL;
			if (below(2))
				len = (len + 4095) & ~4095ULL;
		}
		if (len > size - off)
			len = size - off;
		if (r < 35) { /* write */
			for (uint64_t i = 0; i < len; i++)
				data[i] = (uint8_t)next();
			note("write %" PRIu64 " +%" PRIu64, off, len);
			ssize_t w = pwrite(fd, data, len, (off_t)off);
			if (w != (ssize_t)len)
				die("write %" PRIu64 " +%" PRIu64 ": %zd (%s)", off, len, w, strerror(errno));
			memcpy(model + off, data, len);
			counts[0]++;
		} else if (r < 70) { /* read */
			note("read %" PRIu64 " +%" PRIu64, off, len);
			ssize_t got = pread(fd, buf, len, (off_t)off);
			if (got != (ssize_t)len)
				die("read %" PRIu64 " +%" PRIu64 ": %zd (%s)", off, len, got, strerror(errno));
			compare(buf, model + off, off, len, "read");
			counts[1]++;
		} else if (r < 80) { /* punch a hole */
			note("punch %" PRIu64 " +%" PRIu64, off, len);
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
				die("punch %" PRIu64 " +%" PRIu64 ": %s", off, len, strerror(errno));
			memset(model + off, 0, len);
			counts[2]++;
		} else if (r < 88) { /* zero a range */
			note("zero %" PRIu64 " +%" PRIu64, off, len);
			if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
				die("zero %" PRIu64 " +%" PRIu64 ": %s", off, len, strerror(errno));
			memset(model + off, 0, len);
			counts[3]++;
		} else if (r < 92) { /* truncate: only to the same size */
			bool same = below(2);
			uint64_t to = same ? size : below(size);
			note("truncate to %" PRIu64, to);
			int rc = ftruncate(fd, (off_t)to);
			if (same && rc)
				die("truncate to the same size: %s", strerror(errno));
			if (!same && to != size && (rc == 0 || errno != EPERM))
				die("truncate to %" PRIu64 " was not refused with EPERM: %s", to,
				    rc ? strerror(errno) : "it succeeded");
			if (fstat(fd, &st) || (uint64_t)st.st_size != size)
				die("the size changed to %jd", (intmax_t)st.st_size);
			counts[4]++;
		} else if (r < 97) { /* SEEK_DATA / SEEK_HOLE */
			bool data_seek = below(2);
			note("seek %s from %" PRIu64, data_seek ? "data" : "hole", off);
			off_t at = lseek(fd, (off_t)off, data_seek ? SEEK_DATA : SEEK_HOLE);
			if (at < 0 && !(data_seek && errno == ENXIO))
				die("seek from %" PRIu64 ": %s", off, strerror(errno));
			if (at < 0) { /* no data after OFF: all zeros */
				if (!zeros(model + off, size - off))
					die("SEEK_DATA from %" PRIu64 " said no data, but there is", off);
			} else if ((uint64_t)at < off || (uint64_t)at > size) {
				die("seek from %" PRIu64 " answered %jd", off, (intmax_t)at);
			} else if (data_seek && !zeros(model + off, (uint64_t)at - off)) {
				die("SEEK_DATA from %" PRIu64 " skipped data before %jd", off, (intmax_t)at);
			} else if (!data_seek && (uint64_t)at < size && model[at]) {
				die("SEEK_HOLE from %" PRIu64 " answered %jd, which holds data", off,
				    (intmax_t)at);
			}
			counts[5]++;
		} else if (r < 98) { /* fsync */
			note("fsync");
			if (fsync(fd))
				die("fsync: %s", strerror(errno));
			counts[6]++;
		} else { /* reopen */
			note("reopen");
			close(fd);
			if ((fd = open(path, O_RDWR)) < 0)
				die("reopen: %s", strerror(errno));
			counts[7]++;
		}
		if (n_done % 10000 == 0) {
			note("full compare");
			full_compare(fd, model, size, buf);
			printf("%" PRIu64 " operations, no difference\n", n_done);
			fflush(stdout);
		}
	}
	n_done = ops;
	full_compare(fd, model, size, buf);
	printf("PASS %" PRIu64 " operations on %s (%" PRIu64 " bytes): %" PRIu64 " writes, %" PRIu64
	       " reads, %" PRIu64 " punches, %" PRIu64 " zero ranges, %" PRIu64 " truncates, %" PRIu64
	       " seeks, %" PRIu64 " fsyncs, %" PRIu64 " reopens\n",
	       ops, path, size, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
	       counts[6], counts[7]);
	close(fd);
	free(model);
	free(buf);
	free(data);
	return 0;
}
