/* Keyring parsing on top of the config module; secrets are base64 decoded
 * with OpenSSL and kept in memory only. */
#include "keyring.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define KEYRING_MAX_ENTITIES 1024

struct keyring_entry {
	char name[KEYRING_NAME_MAX];
	uint8_t key[KEYRING_KEY_LEN];
};

struct keyring {
	struct keyring_entry *entries;
	size_t count;
	int error;
	char *err;
	size_t err_len;
	struct cfg *cfg;
};

/* 32 bytes are 44 base64 characters with one '=' of padding, and only
 * the one spelling EVP_EncodeBlock writes is taken: OpenSSL's decoder
 * also reads '=' inside as zero bits and drops stray bits of the last
 * letter, so other texts would stand for the same secret. */
int keyring_decode(const char *b64, uint8_t key[KEYRING_KEY_LEN])
{
	uint8_t out[33];
	char again[45];
	if (strlen(b64) != 44 || EVP_DecodeBlock(out, (const unsigned char *)b64, 44) != 33)
		return -EINVAL;
	EVP_EncodeBlock((unsigned char *)again, out, KEYRING_KEY_LEN);
	int rc = strcmp(again, b64) ? -EINVAL : 0;
	if (rc == 0)
		memcpy(key, out, KEYRING_KEY_LEN);
	OPENSSL_cleanse(out, sizeof(out));
	OPENSSL_cleanse(again, sizeof(again));
	return rc;
}

static void keyring_add_section(const char *section, void *arg)
{
	struct keyring *kr = arg;
	if (kr->error)
		return;
	const char *value;
	if (strlen(section) >= KEYRING_NAME_MAX || !strchr(section, '.')) {
		snprintf(kr->err, kr->err_len,
			 "%s: [%s]: entity names look like client.NAME, osd.N or mon.",
			 cfg_path(kr->cfg), section);
		kr->error = -EINVAL;
		return;
	}
	if (kr->count == KEYRING_MAX_ENTITIES) {
		snprintf(kr->err, kr->err_len, "%s: more than %d entities",
			 cfg_path(kr->cfg), KEYRING_MAX_ENTITIES);
		kr->error = -EINVAL;
		return;
	}
	int rc = cfg_get_str(kr->cfg, section, "key", NULL, &value);
	struct keyring_entry *e = &kr->entries[kr->count];
	if (rc == 0 && keyring_decode(value, e->key) != 0)
		rc = cfg_reject(kr->cfg, section, "key",
				"expected the base64 of a 32-byte secret");
	if (rc != 0) {
		snprintf(kr->err, kr->err_len, "%s", cfg_error(kr->cfg));
		kr->error = -EINVAL;
		return;
	}
	snprintf(e->name, sizeof(e->name), "%s", section);
	kr->count++;
}

static int keyring_build(struct cfg *cfg, struct keyring **out, char *err,
			 size_t err_len)
{
	struct keyring *kr = calloc(1, sizeof(*kr));
	if (kr)
		kr->entries = calloc(KEYRING_MAX_ENTITIES, sizeof(*kr->entries));
	if (!kr || !kr->entries) {
		free(kr);
		cfg_free(cfg);
		return -ENOMEM;
	}
	kr->cfg = cfg;
	kr->err = err;
	kr->err_len = err_len;
	cfg_for_each_section(cfg, "", keyring_add_section, kr);
	int rc = kr->error;
	if (rc == 0 && kr->count == 0) {
		snprintf(err, err_len, "%s: keyring holds no keys", cfg_path(cfg));
		rc = -EINVAL;
	}
	kr->cfg = NULL;
	cfg_free(cfg);
	if (rc) {
		keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int keyring_load(const char *path, struct keyring **out, char *err,
		 size_t err_len)
{
	struct cfg *cfg;
	int rc = cfg_load_as(path, "keyring", &cfg, err, err_len);
	if (rc)
		return rc;
	return keyring_build(cfg, out, err, err_len);
}

int keyring_load_string(const char *name, const char *text,
			struct keyring **out, char *err, size_t err_len)
{
	struct cfg *cfg;
	int rc = cfg_load_string(name, text, &cfg, err, err_len);
	return rc ? rc : keyring_build(cfg, out, err, err_len);
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	if (kr->entries)
		OPENSSL_cleanse(kr->entries,
				KEYRING_MAX_ENTITIES * sizeof(*kr->entries));
	free(kr->entries);
	free(kr);
}

int keyring_find(const struct keyring *kr, const char *entity,
		 uint8_t key[KEYRING_KEY_LEN])
{
	for (size_t i = 0; i < kr->count; i++) {
		if (strcmp(kr->entries[i].name, entity) == 0) {
			memcpy(key, kr->entries[i].key, KEYRING_KEY_LEN);
			return 0;
		}
	}
	return -ENOENT;
}

int keyring_encode(const uint8_t key[KEYRING_KEY_LEN], char *out, size_t out_len)
{
	if (out_len < 45)
		return -ENOSPC;
	EVP_EncodeBlock((unsigned char *)out, key, KEYRING_KEY_LEN);
	return 0;
}

int keyring_new_key_base64(char *out, size_t out_len)
{
	uint8_t key[KEYRING_KEY_LEN];
	if (RAND_bytes(key, sizeof(key)) != 1)
		return -EIO;
	int rc = keyring_encode(key, out, out_len);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

const char *keyring_pick_path(const char *cli_path, const char *conf_path,
			      const char *conf_value, char *buf, size_t len)
{
	if (cli_path && *cli_path)
		snprintf(buf, len, "%s", cli_path);
	else if (conf_value && *conf_value)
		snprintf(buf, len, "%s", conf_value);
	else if (conf_path && strrchr(conf_path, '/'))
		snprintf(buf, len, "%.*s/keyring",
			 (int)(strrchr(conf_path, '/') - conf_path), conf_path);
	else
		snprintf(buf, len, "keyring");
	return buf;
}

const char *keyring_path_for_config(struct cfg *cfg, const char *cli_path, const char *conf_path,
				    char *buf, size_t len)
{
	const char *kr_conf = NULL;
	cfg_get_str(cfg, "global", "keyring", "", &kr_conf);
	return keyring_pick_path(cli_path, conf_path, kr_conf, buf, len);
}
