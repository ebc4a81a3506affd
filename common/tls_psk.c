/* PSK files in psktool's format (see tls.h): the keys a TLS server looks
 * client identities up in, read once at start. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "number.h"
#include "why.h"

#define TLS_PSK_LINE_MAX 1024

struct tls_psk_entry {
	char identity[TLS_PSK_IDENTITY_MAX + 1];
	uint8_t key[TLS_PSK_KEY_MAX];
	size_t key_len;
};

struct tls_psk_file {
	struct tls_psk_entry *entries;
	size_t n, cap;
};

/* One "identity:hexkey" line (newline stripped) into E: NULL, or what is
 * wrong with it. */
static const char *parse_line(char *line, struct tls_psk_entry *e)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return "expected identity:hexkey";
	*colon = '\0';
	const char *hex = colon + 1;
	size_t id_len = strlen(line), hex_len = strlen(hex);
	if (!id_len || id_len > TLS_PSK_IDENTITY_MAX)
		return "the identity must be 1 to 255 bytes";
	for (size_t i = 0; i < id_len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return "the identity must be printable ASCII";
	if (!hex_len || hex_len % 2 || hex_len / 2 > TLS_PSK_KEY_MAX)
		return "the key must be 1 to 64 bytes as an even number of hex digits";
	if (number_hex_decode(hex, e->key, hex_len / 2))
		return "the key is not hex";
	memcpy(e->identity, line, id_len + 1);
	e->key_len = hex_len / 2;
	return NULL;
}

static int add_entry(struct tls_psk_file *f, const struct tls_psk_entry *e)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct tls_psk_entry *grown = realloc(f->entries, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		f->entries = grown;
		f->cap = cap;
	}
	f->entries[f->n++] = *e;
	return 0;
}

static int read_entries(FILE *in, const char *path, struct tls_psk_file *f, char *why,
			size_t why_len)
{
	char line[TLS_PSK_LINE_MAX + 2];
	struct tls_psk_entry e;
	int rc = 0;
	for (unsigned n = 1; !rc && fgets(line, sizeof(line), in); n++) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(in))
			return why_set(why, why_len, -EINVAL, "%s:%u: line too long", path, n);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		const char *bad = parse_line(line, &e);
		if (bad)
			rc = why_set(why, why_len, -EINVAL, "%s:%u: %s", path, n, bad);
		else if (tls_psk_file_find(f, e.identity, NULL, NULL) == 0)
			rc = why_set(why, why_len, -EINVAL, "%s:%u: identity '%s' is given twice",
				     path, n, e.identity);
		else if (add_entry(f, &e))
			rc = why_set(why, why_len, -ENOMEM, "out of memory");
	}
	OPENSSL_cleanse(&e, sizeof(e));
	OPENSSL_cleanse(line, sizeof(line));
	if (!rc && ferror(in))
		rc = why_set(why, why_len, -EIO, "%s: cannot read it", path);
	if (!rc && !f->n)
		rc = why_set(why, why_len, -EINVAL, "%s: no identity:hexkey line in it", path);
	return rc;
}

int tls_psk_file_load(const char *path, struct tls_psk_file **out, char *why, size_t why_len)
{
	FILE *in = fopen(path, "re");
	if (!in)
		return why_set(why, why_len, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(in), &st)) {
		int rc = -errno;
		fclose(in);
		return why_set(why, why_len, rc, "%s: %s", path, strerror(-rc));
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		fclose(in);
		return why_set(why, why_len, -EPERM,
			       "%s holds secret keys but others may read or write it (mode %04o): "
			       "chmod o-rwx %s",
			       path, (unsigned)(st.st_mode & 07777), path);
	}
	struct tls_psk_file *f = calloc(1, sizeof(*f));
	int rc = f ? read_entries(in, path, f, why, why_len)
		   : why_set(why, why_len, -ENOMEM, "out of memory");
	fclose(in);
	if (rc) {
		tls_psk_file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void tls_psk_file_free(struct tls_psk_file *f)
{
	if (!f)
		return;
	if (f->entries)
		OPENSSL_cleanse(f->entries, f->cap * sizeof(*f->entries));
	free(f->entries);
	free(f);
}

/* KEY and KEY_LEN may be NULL: whether IDENTITY is there. */
int tls_psk_file_find(void *arg, const char *identity, uint8_t *key, size_t *key_len)
{
	const struct tls_psk_file *f = arg;
	for (size_t i = 0; i < f->n; i++) {
		const struct tls_psk_entry *e = &f->entries[i];
		if (strcmp(e->identity, identity))
			continue;
		if (key && key_len) {
			if (*key_len < e->key_len)
				return -ENOSPC;
			memcpy(key, e->key, e->key_len);
			*key_len = e->key_len;
		}
		return 0;
	}
	return -ENOENT;
}
