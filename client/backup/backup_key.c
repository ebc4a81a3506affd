/* Backup keys: a key file holds 32 random bytes; three keys are derived
 * from them with HKDF-SHA-256 (OpenSSL), one per purpose, so the chunk
 * names (HMAC) and the repository's key check reveal nothing about the
 * key that encrypts. Losing the file loses every backup made with it. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/number.h"
#include "common/why.h"

#define KEY_FILE_TAG "basalt-backup-key-v1"

void backup_sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
}

bool backup_all_zero(const uint8_t *buf, size_t len)
{
	static const uint8_t zeros[4096];
	for (size_t off = 0; off < len; off += sizeof(zeros)) {
		size_t n = len - off < sizeof(zeros) ? len - off : sizeof(zeros);
		if (memcmp(buf + off, zeros, n) != 0)
			return false;
	}
	return true;
}

void backup_chunk_id(const struct backup_keys *k, const void *plain, size_t len, uint8_t id[32])
{
	if (!k->encrypted) {
		backup_sha256(plain, len, id);
		return;
	}
	unsigned int n = 32;
	HMAC(EVP_sha256(), k->id, 32, plain, len, id, &n);
}

/* OUT = HKDF-SHA-256(MASTER, info = LABEL). */
static int derive(const uint8_t master[32], const char *label, uint8_t out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!ctx)
		return -ENOMEM;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, 32),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label,
						  strlen(label)),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(ctx, out, 32, params);
	EVP_KDF_CTX_free(ctx);
	return ok == 1 ? 0 : -EIO;
}

int backup_key_create(const char *path, char *why, size_t why_len)
{
	uint8_t master[32];
	if (RAND_bytes(master, sizeof(master)) != 1)
		return why_set(why, why_len, -EIO, "no random bytes from OpenSSL");
	char hex[65];
	number_hex_encode(master, 32, hex);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return why_set(why, why_len, -errno, "cannot create key file %s: %s%s", path,
			       strerror(errno),
			       errno == EEXIST ? " (a key file is never overwritten)" : "");
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "# Basalt backup key. Backups encrypted with it cannot be read without\n"
			 "# this file: keep a copy somewhere other than the cluster and the bucket.\n"
			 "%s %s\n", KEY_FILE_TAG, hex);
	bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
	int err = errno;
	close(fd);
	if (!ok) {
		unlink(path);
		return why_set(why, why_len, -err, "cannot write key file %s: %s", path,
			       strerror(err));
	}
	return 0;
}

/* The 32 bytes of the key file's one key line. */
static int key_file_read(const char *path, uint8_t master[32], char *why, size_t why_len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return why_set(why, why_len, -errno, "cannot read key file %s: %s", path,
			       strerror(errno));
	char line[256], hex[80];
	int rc = -EINVAL;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char tag[32];
		if (sscanf(line, "%31s %79s", tag, hex) == 2 && strcmp(tag, KEY_FILE_TAG) == 0 &&
		    number_hex_decode(hex, master, 32) == 0)
			rc = 0;
		break;
	}
	fclose(f);
	if (rc)
		return why_set(why, why_len, rc,
			       "%s is not a Basalt backup key file (basalt backup key create "
			       "makes one)", path);
	return 0;
}

int backup_key_load(const char *path, struct backup_keys *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	uint8_t master[32];
	int rc = key_file_read(path, master, why, why_len);
	if (rc)
		return rc;
	if (derive(master, "basalt backup: chunk and manifest encryption", out->data) ||
	    derive(master, "basalt backup: chunk names", out->id) ||
	    derive(master, "basalt backup: key check", out->check))
		rc = why_set(why, why_len, -EIO, "cannot derive keys from %s (OpenSSL HKDF)", path);
	memset(master, 0, sizeof(master));
	out->encrypted = rc == 0;
	return rc;
}
