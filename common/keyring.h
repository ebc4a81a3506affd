/* The keyring: named entities ("client.admin", "osd.1", "mon.") and their
 * 256-bit secrets, in an INI file beside the config:
 *     [client.admin]
 *     key = <base64 of 32 bytes>
 * Both ends of a connection must hold the same secret for the entity that
 * opens it; the secret itself never crosses the wire. */
#ifndef BASALT_COMMON_KEYRING_H
#define BASALT_COMMON_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#define KEYRING_KEY_LEN 32
#define KEYRING_NAME_MAX 64

struct keyring;

/* Loads PATH; errors name file, line and entity. Caller frees. */
int keyring_load(const char *path, struct keyring **out, char *err,
		 size_t err_len);
int keyring_load_string(const char *name, const char *text,
			struct keyring **out, char *err, size_t err_len);
void keyring_free(struct keyring *kr);

/* Copies ENTITY's secret into KEY; -ENOENT when unknown. */
int keyring_find(const struct keyring *kr, const char *entity,
		 uint8_t key[KEYRING_KEY_LEN] /* out */);

/* Decodes a base64 secret (44 characters, as keyring_new_key_base64 and
 * `base64` write them): 0, or -EINVAL for any other text. */
int keyring_decode(const char *b64, uint8_t key[KEYRING_KEY_LEN] /* out */);

/* KEY as base64 (44 chars + NUL) into OUT: 0, or -ENOSPC. */
int keyring_encode(const uint8_t key[KEYRING_KEY_LEN], char *out, size_t out_len);

/* A fresh random secret as base64 (44 chars + NUL) for new keyrings. */
int keyring_new_key_base64(char *out, size_t out_len);

/* The keyring path: --keyring, else `keyring =` in the config's [global],
 * else "keyring" beside the config file. Writes into BUF. */
const char *keyring_pick_path(const char *cli_path, const char *conf_path,
			      const char *conf_value, char *buf, size_t len);

struct cfg;
/* The same, taking the config value from CFG's [global] keyring. */
const char *keyring_path_for_config(struct cfg *cfg, const char *cli_path,
				    const char *conf_path, char *buf, size_t len);

#endif
