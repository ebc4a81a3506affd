/* libFuzzer target for the keyring parser (common/keyring.h). Byte 0
 * picks the input's use; the rest is:
 *  0: keyring text, cut at its first NUL (keyring_load_string takes a C
 *     string): it loads or is refused with a message naming the keyring,
 *     and every entity it names in brackets is found, or not, by
 *     keyring_find; the text is also a secret for keyring_decode;
 *  1: entities to write a keyring of, one per line (bytes mapped onto
 *     the letters of entity names), each with a secret from the bytes
 *     after it: the keyring loads exactly when every name is valid and
 *     new, and keyring_find gives each name its own secret back;
 *  2: a secret: 44 bytes mapped onto base64's letters and '=', for
 *     keyring_decode. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/config.h"
#include "common/keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENTITIES_MAX 16

static void check_decode(const char *text)
{
	uint8_t key[KEYRING_KEY_LEN], again[KEYRING_KEY_LEN];
	if (keyring_decode(text, key) != 0)
		return;
	BASALT_ASSERT(strlen(text) == 44);
	/* The one spelling of the secret: it encodes back to the text. */
	char b64[45];
	EVP_EncodeBlock((unsigned char *)b64, key, KEYRING_KEY_LEN);
	BASALT_ASSERT(!strcmp(b64, text));
	BASALT_ASSERT(keyring_decode(b64, again) == 0 && !memcmp(key, again, sizeof(key)));
}

static void fuzz_text(const char *text)
{
	struct keyring *kr = NULL;
	char err[256] = "";
	int rc = keyring_load_string("kr", text, &kr, err, sizeof(err));
	check_decode(text);
	if (rc) {
		BASALT_ASSERT(rc == -EINVAL && !kr && !strncmp(err, "kr", 2));
		return;
	}
	uint8_t key[KEYRING_KEY_LEN];
	for (const char *open = strchr(text, '['); open; open = strchr(open + 1, '[')) {
		const char *close = strchr(open, ']');
		if (!close)
			break;
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(close - open - 1), open + 1);
		if (keyring_find(kr, name, key) == 0)
			BASALT_ASSERT(strlen(name) < KEYRING_NAME_MAX && strchr(name, '.'));
	}
	BASALT_ASSERT(keyring_find(kr, "", key) == -ENOENT);
	keyring_free(kr);
}

/* An entity name from N bytes at P, in the letters of real ones. */
static void entity_name(const uint8_t *p, size_t n, char *out)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789._-";
	for (size_t i = 0; i < n; i++)
		out[i] = letters[p[i] % (sizeof(letters) - 1)];
	out[n] = '\0';
}

struct entity {
	char name[96];
	uint8_t key[KEYRING_KEY_LEN];
};

static bool entity_valid(const struct entity *es, size_t i)
{
	size_t len = strlen(es[i].name);
	if (len >= KEYRING_NAME_MAX || len > CFG_SECTION_MAX || !strchr(es[i].name, '.'))
		return false;
	for (size_t j = 0; j < i; j++)
		if (!strcmp(es[i].name, es[j].name))
			return false;
	return true;
}

static void fuzz_entities(const uint8_t *data, size_t size)
{
	static struct entity es[ENTITIES_MAX];
	static char text[ENTITIES_MAX * 160];
	size_t n = 0, used = 0;
	bool valid = true;
	for (size_t at = 0; at < size && n < ENTITIES_MAX; n++) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = (nl ? (size_t)(nl - data) : size) - at;
		if (len > sizeof(es[n].name) - 1)
			len = sizeof(es[n].name) - 1;
		entity_name(data + at, len, es[n].name);
		at += len + (nl ? 1 : 0);
		memset(es[n].key, 0, KEYRING_KEY_LEN);
		size_t k = size - at < KEYRING_KEY_LEN ? size - at : KEYRING_KEY_LEN;
		memcpy(es[n].key, data + at, k);
		at += k;
		valid = valid && entity_valid(es, n);
		char b64[45];
		EVP_EncodeBlock((unsigned char *)b64, es[n].key, KEYRING_KEY_LEN);
		used += (size_t)snprintf(text + used, sizeof(text) - used, "[%s]\nkey = %s\n",
					 es[n].name, b64);
	}
	struct keyring *kr = NULL;
	char err[256];
	int rc = keyring_load_string("kr", text, &kr, err, sizeof(err));
	BASALT_ASSERT((rc == 0) == (valid && n > 0));
	uint8_t key[KEYRING_KEY_LEN];
	for (size_t i = 0; rc == 0 && i < n; i++) {
		BASALT_ASSERT(keyring_find(kr, es[i].name, key) == 0);
		BASALT_ASSERT(!memcmp(key, es[i].key, KEYRING_KEY_LEN));
	}
	keyring_free(kr);
	text[0] = '\0';
}

/* 44 bytes at DATA as base64 letters (and '='). */
static void fuzz_secret(const uint8_t *data, size_t size)
{
	static const char letters[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	char text[45];
	size_t n = size < 44 ? size : 44;
	for (size_t i = 0; i < n; i++)
		text[i] = letters[data[i] % (sizeof(letters) - 1)];
	text[n] = '\0';
	check_decode(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 3 == 1) {
		fuzz_entities(data + 1, size - 1);
		return 0;
	}
	if (data[0] % 3 == 2) {
		fuzz_secret(data + 1, size - 1);
		return 0;
	}
	char *text = strndup((const char *)data + 1, size - 1); /* cut at the first NUL */
	if (text)
		fuzz_text(text);
	free(text);
	return 0;
}
