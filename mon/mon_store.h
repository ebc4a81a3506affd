/* A monitor's durable Raft state, in a directory:
 *
 *   meta      term and vote: two 4 KiB slots written alternately, each
 *             with a generation and a CRC32C (a torn write loses nothing)
 *   log       append-only records (magic, index, term, type, length, data,
 *             CRC32C); a torn tail is cut off at open
 *   snapshot  the state machine at some index: written to snapshot.tmp,
 *             synced, renamed, directory synced (atomic)
 *
 * Writes become durable at mon_store_sync(): Raft calls it before it
 * sends anything that depends on them. After a snapshot the log is
 * rewritten without the entries it covers (log.tmp + rename). Plain
 * syscalls: a monitor writes little, and only between network events. */
#ifndef BASALT_MON_MON_STORE_H
#define BASALT_MON_MON_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct mon_store;

/* Creates DIR (must not hold a store) with term 0 and no vote. */
int mon_store_create(const char *dir, char *why, size_t why_len);

/* Opens DIR and fills BOOT with what it holds (valid until the next call
 * on the store). A torn log tail is cut off; anything else inconsistent is
 * -EUCLEAN with WHY. */
int mon_store_open(const char *dir, struct mon_store **out,
		   struct raft_boot *boot /* out */, char *why, size_t why_len);
void mon_store_close(struct mon_store *ms);

int mon_store_save_term_vote(struct mon_store *ms, uint64_t term, int vote);
int mon_store_append(struct mon_store *ms, const struct raft_entry *entries,
		     size_t n);
int mon_store_save_snapshot(struct mon_store *ms, uint64_t index, uint64_t term,
			    const uint8_t *data, size_t len, bool keep_tail);
int mon_store_sync(struct mon_store *ms);

/* Bytes of the log file (tests and status). */
uint64_t mon_store_log_bytes(const struct mon_store *ms);

#endif
