/* libFuzzer target for what a backup reads back from a bucket it does
 * not trust (client/backup/): the sealed envelope (plain and encrypted,
 * compressed or not), a summary and a chunk map. Byte 0 picks the
 * decoder; the rest is its input. A map that decodes is sorted with one
 * entry per chunk, within a chunk's size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/backup/backup_int.h"
#include "common/assert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_unseal(const uint8_t *buf, size_t len, bool encrypted)
{
	struct backup_keys k = { .encrypted = encrypted };
	memset(k.data, 7, sizeof(k.data));
	void *plain = NULL;
	size_t n = 0;
	char why[256];
	if (backup_unseal(&k, "BSLTCHK1", "aad", 3, buf, len, BACKUP_CHUNK_SIZE, &plain, &n, why,
			  sizeof(why)) == 0)
		BASALT_ASSERT(n <= BACKUP_CHUNK_SIZE);
	free(plain);
}

static void fuzz_map(const char *text, size_t len)
{
	struct backup_map m;
	char why[256];
	if (backup_map_decode(text, len, "ID-1", &m, why, sizeof(why)) != 0)
		return;
	for (size_t i = 0; i < m.n; i++) {
		BASALT_ASSERT(i == 0 || m.c[i - 1].index < m.c[i].index);
		BASALT_ASSERT(m.c[i].plain_len > 0 && m.c[i].plain_len <= BACKUP_CHUNK_SIZE);
		BASALT_ASSERT(backup_map_find(&m, m.c[i].index) == &m.c[i]);
	}
	char *again = backup_map_encode("ID-1", &m);
	BASALT_ASSERT(again != NULL);
	struct backup_map back;
	BASALT_ASSERT(backup_map_decode(again, strlen(again), "ID-1", &back, why, sizeof(why)) == 0);
	BASALT_ASSERT(back.n == m.n);
	free(again);
	backup_map_free(&back);
	backup_map_free(&m);
}

static void fuzz_summary(const char *text, size_t len)
{
	struct backup_summary s;
	char why[256];
	if (backup_summary_decode(text, len, &s, why, sizeof(why)) != 0)
		return;
	BASALT_ASSERT(s.chunk_size == BACKUP_CHUNK_SIZE && s.id[0] && s.volume[0]);
	char *again = backup_summary_encode(&s);
	BASALT_ASSERT(again != NULL);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: fuzz_unseal(data + 1, size - 1, false); break;
	case 1: fuzz_unseal(data + 1, size - 1, true); break;
	case 2: fuzz_map((const char *)data + 1, size - 1); break;
	default: fuzz_summary((const char *)data + 1, size - 1); break;
	}
	return 0;
}
