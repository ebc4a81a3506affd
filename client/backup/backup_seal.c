/* The envelope of every object a backup stores (backup_int.h): zstd
 * when it shrinks the data, AES-256-GCM when the repository is
 * encrypted. The header and the caller's AAD (an object's name or a
 * chunk's id) are authenticated, so an object cannot be swapped for
 * another or have its flags changed without the tag failing. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/auth.h"
#include "common/enc.h"
#include "common/why.h"

#define NONCE_LEN AUTH_GCM_NONCE_LEN
#define TAG_LEN AUTH_GCM_TAG_LEN

static void header_put(uint8_t *h, const char magic[8], uint8_t flags, uint32_t plain_len)
{
	memcpy(h, magic, 8);
	h[8] = flags;
	h[9] = h[10] = h[11] = 0;
	h[12] = (uint8_t)plain_len;
	h[13] = (uint8_t)(plain_len >> 8);
	h[14] = (uint8_t)(plain_len >> 16);
	h[15] = (uint8_t)(plain_len >> 24);
}

/* AES-256-GCM under K's data key; AAD1 is the header, AAD2 the caller's. */
static int gcm(const struct backup_keys *k, bool encrypt, const uint8_t nonce[NONCE_LEN],
	       const uint8_t *aad1, size_t aad1_len, const void *aad2, size_t aad2_len,
	       const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN])
{
	return auth_gcm(k->data, encrypt, nonce, aad1, aad1_len, aad2, aad2_len, in, len, out, tag);
}

int backup_seal(const struct backup_keys *k, const char magic[8], const void *aad,
		size_t aad_len, const void *plain, size_t len, int level, void **out,
		size_t *out_len, char *why, size_t why_len)
{
	if (len > UINT32_MAX)
		return why_set(why, why_len, -EFBIG, "object of %zu bytes is too big to seal", len);
	size_t bound = ZSTD_compressBound(len);
	size_t extra = BACKUP_SEAL_HEADER + NONCE_LEN + TAG_LEN;
	uint8_t *buf = malloc(extra + (bound > len ? bound : len));
	if (!buf)
		return why_set(why, why_len, -ENOMEM, "out of memory sealing %zu bytes", len);
	uint8_t flags = k->encrypted ? BACKUP_SEAL_GCM : 0;
	uint8_t *body = buf + BACKUP_SEAL_HEADER + (k->encrypted ? NONCE_LEN : 0);
	size_t body_len = ZSTD_compress(body, bound, plain, len, level ? level : BACKUP_ZSTD_LEVEL);
	if (ZSTD_isError(body_len) || body_len >= len) {
		memcpy(body, plain, len);
		body_len = len;
	} else {
		flags |= BACKUP_SEAL_ZSTD;
	}
	header_put(buf, magic, flags, (uint32_t)len);
	if (k->encrypted) {
		uint8_t *nonce = buf + BACKUP_SEAL_HEADER;
		if (RAND_bytes(nonce, NONCE_LEN) != 1 ||
		    gcm(k, true, nonce, buf, BACKUP_SEAL_HEADER, aad, aad_len, body, body_len, body,
			body + body_len)) {
			free(buf);
			return why_set(why, why_len, -EIO, "AES-256-GCM encryption failed");
		}
		body_len += TAG_LEN;
	}
	*out = buf;
	*out_len = (size_t)(body - buf) + body_len;
	return 0;
}

/* The body of BUF, decrypted in place into a copy when sealed with GCM:
 * *BODY points into BUF or into *OWNED (caller frees). */
static int unseal_body(const struct backup_keys *k, const uint8_t *buf, size_t len,
		       const void *aad, size_t aad_len, const uint8_t **body, size_t *body_len,
		       uint8_t **owned, char *why, size_t why_len)
{
	*owned = NULL;
	*body = buf + BACKUP_SEAL_HEADER;
	*body_len = len - BACKUP_SEAL_HEADER;
	if (!(buf[8] & BACKUP_SEAL_GCM))
		return 0;
	if (!k->encrypted)
		return why_set(why, why_len, -ENOKEY, "it is encrypted and no key file was given");
	if (*body_len < NONCE_LEN + TAG_LEN)
		return why_set(why, why_len, -EBADMSG, "truncated (%zu bytes)", len);
	size_t n = *body_len - NONCE_LEN - TAG_LEN;
	*owned = malloc(n ? n : 1);
	if (!*owned)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	uint8_t tag[TAG_LEN];
	memcpy(tag, *body + NONCE_LEN + n, TAG_LEN);
	if (gcm(k, false, *body, buf, BACKUP_SEAL_HEADER, aad, aad_len, *body + NONCE_LEN, n,
		*owned, tag)) {
		free(*owned);
		*owned = NULL;
		return why_set(why, why_len, -EBADMSG,
			       "authentication failed (altered, or another key's)");
	}
	*body = *owned;
	*body_len = n;
	return 0;
}

int backup_unseal(const struct backup_keys *k, const char magic[8], const void *aad,
		  size_t aad_len, const void *buf_in, size_t len, size_t max_plain, void **plain,
		  size_t *plain_len, char *why, size_t why_len)
{
	const uint8_t *buf = buf_in;
	if (len < BACKUP_SEAL_HEADER || memcmp(buf, magic, 8) != 0 ||
	    (buf[8] & ~(BACKUP_SEAL_ZSTD | BACKUP_SEAL_GCM)))
		return why_set(why, why_len, -EBADMSG, "not a Basalt %.8s object (bad header)",
			       magic);
	uint32_t want = (uint32_t)buf[12] | (uint32_t)buf[13] << 8 | (uint32_t)buf[14] << 16 |
			(uint32_t)buf[15] << 24;
	if (want > max_plain)
		return why_set(why, why_len, -EBADMSG, "claims %u bytes, more than %zu", want,
			       max_plain);
	const uint8_t *body;
	size_t body_len;
	uint8_t *owned;
	int rc = unseal_body(k, buf, len, aad, aad_len, &body, &body_len, &owned, why, why_len);
	if (rc)
		return rc;
	uint8_t *out = malloc(want ? want : 1);
	if (!out) {
		free(owned);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	size_t got = body_len;
	if (buf[8] & BACKUP_SEAL_ZSTD) {
		got = ZSTD_decompress(out, want, body, body_len);
		if (ZSTD_isError(got))
			got = (size_t)-1;
	} else if (body_len == want) {
		memcpy(out, body, body_len);
	}
	free(owned);
	if (got != want) {
		free(out);
		return why_set(why, why_len, -EBADMSG, "body does not decode to %u bytes", want);
	}
	*plain = out;
	*plain_len = want;
	return 0;
}
