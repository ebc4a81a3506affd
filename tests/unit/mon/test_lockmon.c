/* Lock leases: renewals keep a lease, silence ends it, a new leader gives
 * every holder a whole lease, and a full table forgets rather than errs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "mon/lockmon.h"

static void test_lease(void **state)
{
	(void)state;
	struct lockmon *lm = malloc(sizeof(*lm));
	lockmon_init(lm, 15000);
	lockmon_leader(lm, 1000);
	uint64_t age;
	/* Never heard of: a whole lease from the leader's start. */
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 1000, &age), 15000);
	assert_true(age == UINT64_MAX);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 16000, NULL), 0);
	lockmon_renew(lm, 7, 1, 20000);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 21000, &age), 14000);
	assert_int_equal(age, 1000);
	lockmon_renew(lm, 7, 1, 30000);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 44999, NULL), 1);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 45000, NULL), 0);
	/* Another client's renewal, or another volume's, is not this one's. */
	lockmon_renew(lm, 8, 1, 50000);
	lockmon_renew(lm, 7, 2, 50000);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 50000, NULL), 0);
	/* A monitor that becomes leader gives every holder a whole lease. */
	lockmon_leader(lm, 60000);
	assert_int_equal(lockmon_left_ms(lm, 7, 1, 61000, NULL), 14000);
	free(lm);
}

static void test_full_table(void **state)
{
	(void)state;
	struct lockmon *lm = malloc(sizeof(*lm));
	lockmon_init(lm, 15000);
	lockmon_leader(lm, 1);
	/* Far more holders than slots: a holder is either remembered exactly
	 * or forgotten (expired: a takeover would fence it), never given a
	 * wrong lease; most stay remembered. */
	for (uint64_t c = 1; c <= 3 * LOCKMON_SLOTS; c++)
		lockmon_renew(lm, c, c % 17, 100000 + c);
	unsigned kept = 0;
	for (uint64_t c = 1; c <= 3 * LOCKMON_SLOTS; c++) {
		uint64_t left = lockmon_left_ms(lm, c, c % 17, 120000, NULL);
		uint64_t want = 100000 + c + 15000 > 120000 ? 100000 + c + 15000 - 120000 : 0;
		assert_true(left == want || left == 0);
		kept += left == want && want;
	}
	assert_true(kept > LOCKMON_SLOTS / 2);
	/* Long-expired slots are reused. */
	lockmon_renew(lm, 999999, 5, 10000000);
	assert_int_equal(lockmon_left_ms(lm, 999999, 5, 10000000, NULL), 15000);
	free(lm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_full_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
