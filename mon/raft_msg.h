/* Raft messages between monitors travel as MON_MSG_RAFT messages of the
 * monitor protocol; this is their encoding. Only monitors speak it, so it
 * lives here rather than beside the protocol every party shares. */
#ifndef BASALT_MON_RAFT_MSG_H
#define BASALT_MON_RAFT_MSG_H

#include <stddef.h>

#include "common/msgr_frame.h"
#include "common/cluster/mon_proto.h"
#include "raft.h"

/* Encodes M (entries and snapshot data included) into a new message. */
struct msg *mon_raft_encode(const struct raft_msg *m);
/* Decodes a MON_MSG_RAFT payload; entries and snapshot point into MSG,
 * ENTRIES (capacity MAX) receives the entry headers. */
int mon_raft_decode(const struct msg *msg, struct raft_msg *out,
		    struct raft_entry *entries, size_t max);

#endif
