/* Fault injection for any loop: wraps the loop's backend so that chosen
 * kinds of operations fail with a chosen error, or come back short (a
 * recv or read that returns fewer bytes, a send of only its first iovec),
 * at random with a given rate. Decisions come from a seed, so a failing
 * test replays. Note: a shortened op has its len/iovcnt reduced. Of a
 * chain of linked ops (io_link) only the head is failed (the rest are then
 * cancelled, as the kernel does) and none is shortened. */
#ifndef BASALT_COMMON_IO_FAULT_H
#define BASALT_COMMON_IO_FAULT_H

#include <stdint.h>

#include "loop.h"

struct io_fault;

/* Wraps LOOP's current backend; the wrapper lives as long as LOOP. */
int io_fault_attach(struct io_loop *loop, uint64_t seed,
		    struct io_fault **out /* out */);
/* Ops of KIND fail with ERROR (negative errno) at ERROR_PER_MILLION and
 * are shortened at SHORT_PER_MILLION. Zero rates turn injection off. */
void io_fault_set(struct io_fault *f, enum io_op_kind kind,
		  uint32_t error_per_million, int error,
		  uint32_t short_per_million);
/* How many errors and short ops were injected so far. */
uint64_t io_fault_errors(const struct io_fault *f);
uint64_t io_fault_shorts(const struct io_fault *f);

#endif
