/* Raft messages between monitors round-trip, and every truncation, too
 * many entries or an unknown type is -EBADMSG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "mon/raft_msg.h"

static void test_raft_roundtrip_and_truncation(void **state)
{
	(void)state;
	uint8_t a[] = "first", b[] = "second entry";
	struct raft_entry es[2] = { { 3, 10, RAFT_ENTRY_COMMAND, sizeof(a), a },
				    { 3, 11, RAFT_ENTRY_NOOP, sizeof(b), b } };
	uint8_t snap[] = "snapshot bytes";
	struct raft_msg m = { .type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 3,
			      .prev_index = 9, .prev_term = 2, .commit = 8, .entries = es,
			      .n_entries = 2, .success = true, .match_index = 7, .hint = 5,
			      .snap_index = 4, .snap_term = 1, .snap_data = snap,
			      .snap_len = sizeof(snap) };
	struct msg *msg = mon_raft_encode(&m);
	assert_non_null(msg);
	struct raft_entry got_es[4];
	struct raft_msg got;
	assert_int_equal(mon_raft_decode(msg, &got, got_es, 4), 0);
	assert_int_equal(got.type, RAFT_MSG_APPEND);
	assert_true(got.from == 2 && got.to == 1 && got.term == 3 && got.success);
	assert_true(got.prev_index == 9 && got.prev_term == 2 && got.commit == 8);
	assert_true(got.match_index == 7 && got.hint == 5 && got.snap_index == 4);
	assert_int_equal(got.n_entries, 2);
	assert_int_equal(got.entries[1].index, 11);
	assert_memory_equal(got.entries[1].data, b, sizeof(b));
	assert_memory_equal(got.snap_data, snap, sizeof(snap));
	/* Room for one entry only: refused, not overrun. */
	assert_int_equal(mon_raft_decode(msg, &got, got_es, 1), -EBADMSG);
	uint32_t len = msg->hdr.payload_len;
	for (uint32_t cut = 0; cut < len; cut++) {
		msg->hdr.payload_len = cut;
		assert_int_equal(mon_raft_decode(msg, &got, got_es, 4), -EBADMSG);
	}
	msg->hdr.payload_len = len;
	msg->payload[0] = 99; /* no such type */
	assert_int_equal(mon_raft_decode(msg, &got, got_es, 4), -EBADMSG);
	msg_free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raft_roundtrip_and_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
