/* The monitor's durable Raft state: round trips of term/vote, log and
 * snapshot through close and open; suffix replacement; a torn log tail cut
 * at every byte; a torn meta slot; corruption refused with a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mon/mon_store.h"

struct fix {
	char dir[64];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/basalt-monstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	rmdir(f->dir);
	char why[256];
	assert_int_equal(mon_store_create(f->dir, why, sizeof(why)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct raft_entry entry(uint64_t index, uint64_t term, const char *text)
{
	return (struct raft_entry){ term, index, RAFT_ENTRY_COMMAND, (uint32_t)strlen(text),
				    (uint8_t *)text };
}

static void append_range(struct mon_store *ms, uint64_t from, uint64_t to, uint64_t term)
{
	static char texts[64][32];
	for (uint64_t i = from; i <= to; i++) {
		snprintf(texts[i % 64], sizeof(texts[0]), "entry %llu term %llu",
			 (unsigned long long)i, (unsigned long long)term);
		struct raft_entry e = entry(i, term, texts[i % 64]);
		assert_int_equal(mon_store_append(ms, &e, 1), 0);
	}
}

static void expect_entry(const struct raft_boot *b, uint64_t index, uint64_t term)
{
	assert_true(index > b->snap_index);
	const struct raft_entry *e = &b->entries[index - b->snap_index - 1];
	char want[32];
	snprintf(want, sizeof(want), "entry %llu term %llu", (unsigned long long)index,
		 (unsigned long long)term);
	assert_int_equal(e->index, index);
	assert_int_equal(e->term, term);
	assert_int_equal(e->len, strlen(want));
	assert_memory_equal(e->data, want, e->len);
}

static void test_round_trip_and_suffix_replacement(void **state)
{
	struct fix *f = *state;
	struct mon_store *ms;
	struct raft_boot b;
	char why[256];
	assert_int_equal(mon_store_create(f->dir, why, sizeof(why)), -EEXIST);
	assert_non_null(strstr(why, "already holds a monitor store"));
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.term, 0);
	assert_int_equal(b.vote, RAFT_NO_VOTE);
	assert_int_equal(b.n_entries, 0);
	for (uint64_t t = 1; t <= 5; t++)
		assert_int_equal(mon_store_save_term_vote(ms, t, (int)t % 3), 0);
	append_range(ms, 1, 10, 2);
	/* Raft replaces a conflicting suffix. */
	append_range(ms, 6, 8, 5);
	assert_int_equal(mon_store_sync(ms), 0);
	mon_store_close(ms);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.term, 5);
	assert_int_equal(b.vote, 2);
	assert_int_equal(b.n_entries, 8);
	for (uint64_t i = 1; i <= 5; i++)
		expect_entry(&b, i, 2);
	for (uint64_t i = 6; i <= 8; i++)
		expect_entry(&b, i, 5);
	/* An append must follow the log. */
	struct raft_entry gap = entry(20, 5, "x");
	assert_int_equal(mon_store_append(ms, &gap, 1), -EINVAL);
	mon_store_close(ms);
}

static char *file_of(struct fix *f, const char *name)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	return path;
}

static void test_torn_log_tail_at_every_byte(void **state)
{
	struct fix *f = *state;
	struct mon_store *ms;
	struct raft_boot b;
	char why[256];
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	append_range(ms, 1, 6, 1);
	assert_int_equal(mon_store_sync(ms), 0);
	uint64_t full = mon_store_log_bytes(ms);
	mon_store_close(ms);
	/* Record boundaries: what a cut at each byte must leave. */
	uint64_t ends[7] = { 0 };
	for (uint64_t i = 1; i <= 6; i++) {
		char text[32];
		snprintf(text, sizeof(text), "entry %llu term 1", (unsigned long long)i);
		ends[i] = ends[i - 1] + 32 + strlen(text) + 4;
	}
	assert_int_equal(ends[6], full);
	char *log = file_of(f, "log");
	int fd = open(log, O_RDONLY);
	uint8_t *copy = malloc(full);
	assert_int_equal(pread(fd, copy, full, 0), (ssize_t)full);
	close(fd);
	for (uint64_t cut = 0; cut <= full; cut++) {
		fd = open(log, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, copy, cut), (ssize_t)cut);
		close(fd);
		assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
		uint64_t whole = 0;
		while (whole < 6 && ends[whole + 1] <= cut)
			whole++;
		assert_int_equal(b.n_entries, whole);
		/* The torn part is gone from the file too: appends continue. */
		assert_int_equal(mon_store_log_bytes(ms), ends[whole]);
		append_range(ms, whole + 1, whole + 1, 3);
		assert_int_equal(mon_store_sync(ms), 0);
		mon_store_close(ms);
		assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
		assert_int_equal(b.n_entries, whole + 1);
		expect_entry(&b, whole + 1, 3);
		mon_store_close(ms);
	}
	/* Garbage after the last record is cut off as well. */
	fd = open(log, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, copy, full), (ssize_t)full);
	assert_int_equal(write(fd, "garbage!garbage!garbage!garbage!garbage!", 40), 40);
	close(fd);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.n_entries, 6);
	mon_store_close(ms);
	free(copy);
}

static void test_snapshots(void **state)
{
	struct fix *f = *state;
	struct mon_store *ms;
	struct raft_boot b;
	char why[256];
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	append_range(ms, 1, 20, 4);
	assert_int_equal(mon_store_save_snapshot(ms, 12, 4, (const uint8_t *)"STATE12", 7, true), 0);
	/* An append after the snapshot goes to the rewritten log. */
	append_range(ms, 21, 22, 4);
	assert_int_equal(mon_store_sync(ms), 0);
	mon_store_close(ms);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.snap_index, 12);
	assert_int_equal(b.snap_term, 4);
	assert_int_equal(b.snap_len, 7);
	assert_memory_equal(b.snap_data, "STATE12", 7);
	assert_int_equal(b.n_entries, 10);
	expect_entry(&b, 13, 4);
	expect_entry(&b, 22, 4);
	/* A snapshot from a leader that replaces the log entirely. */
	assert_int_equal(mon_store_save_snapshot(ms, 30, 6, (const uint8_t *)"S30", 3, false), 0);
	mon_store_close(ms);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.snap_index, 30);
	assert_int_equal(b.n_entries, 0);
	append_range(ms, 31, 31, 6);
	mon_store_close(ms);
	/* A corrupt snapshot is refused, not ignored. */
	int fd = open(file_of(f, "snapshot"), O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, 33), 1);
	close(fd);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "snapshot is unreadable or corrupt"));
}

static void test_meta_slots(void **state)
{
	struct fix *f = *state;
	struct mon_store *ms;
	struct raft_boot b;
	char why[256];
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(mon_store_save_term_vote(ms, 7, 1), 0);
	assert_int_equal(mon_store_save_term_vote(ms, 8, 2), 0);
	assert_int_equal(mon_store_sync(ms), 0);
	mon_store_close(ms);
	/* Generation 3 (term 8) is in slot 1; tear it: term 7 comes back. */
	int fd = open(file_of(f, "meta"), O_RDWR);
	assert_int_equal(pwrite(fd, "torn", 4, 4096 + 100), 4);
	close(fd);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), 0);
	assert_int_equal(b.term, 7);
	assert_int_equal(b.vote, 1);
	mon_store_close(ms);
	fd = open(file_of(f, "meta"), O_RDWR);
	assert_int_equal(pwrite(fd, "torn", 4, 100), 4);
	close(fd);
	assert_int_equal(mon_store_open(f->dir, &ms, &b, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "both slots are corrupt"));
	/* Not a store at all. */
	assert_int_equal(mon_store_open("/tmp/no-such-mon-store", &ms, &b, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "basalt-mon --mkfs"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_and_suffix_replacement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_log_tail_at_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_slots, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
