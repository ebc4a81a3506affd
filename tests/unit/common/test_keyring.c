/* Keyring parsing and the HMAC-SHA256 proofs of the handshake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "common/auth.h"
#include "common/config.h"
#include "common/keyring.h"

static const char keyring_text[] =
	"[client.admin]\n"
	"key = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	"[osd.1]\n"
	"key = //////////////////////////////////////////8=\n";

static void test_load_and_find(void **state)
{
	(void)state;
	struct keyring *kr;
	char err[256];
	assert_int_equal(keyring_load_string("kr", keyring_text, &kr, err, sizeof(err)), 0);
	uint8_t key[KEYRING_KEY_LEN];
	assert_int_equal(keyring_find(kr, "client.admin", key), 0);
	for (int i = 0; i < KEYRING_KEY_LEN; i++)
		assert_int_equal(key[i], i);
	assert_int_equal(keyring_find(kr, "osd.1", key), 0);
	assert_int_equal(key[0], 0xff);
	assert_int_equal(keyring_find(kr, "osd.2", key), -ENOENT);
	keyring_free(kr);
}

static void expect_error(const char *text, const char *want)
{
	struct keyring *kr = NULL;
	char err[256];
	assert_int_equal(keyring_load_string("kr", text, &kr, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[client.admin]\nkey = short=\n",
		     "kr:2: [client.admin] key: expected the base64 of a 32-byte secret");
	expect_error("[client.admin]\ncaps = admin\n",
		     "kr: [client.admin] key: required key is missing");
	expect_error("[admin]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		     "kr: [admin]: entity names look like client.NAME, osd.N or mon.");
	expect_error("# nothing\n", "kr: keyring holds no keys");
}

/* Found by fuzz_keyring: an entity name of 50 to 63 bytes was cut to 49
 * by the INI parser, so its key was another entity's. Now refused; 49
 * bytes still load. */
static void test_long_entity_name(void **state)
{
	(void)state;
	char text[256], name[64], err[256];
	static const char *const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	snprintf(name, sizeof(name), "client.%0*d", CFG_SECTION_MAX - 7, 1);
	snprintf(text, sizeof(text), "[%s]\nkey = %s\n", name, key);
	struct keyring *kr;
	assert_int_equal(keyring_load_string("kr", text, &kr, err, sizeof(err)), 0);
	uint8_t got[KEYRING_KEY_LEN];
	assert_int_equal(keyring_find(kr, name, got), 0);
	keyring_free(kr);
	snprintf(text, sizeof(text), "[client.%0*d]\nkey = %s\n", CFG_SECTION_MAX - 6, 1, key);
	expect_error(text, "kr:1: a section name longer than 49 bytes");
}

/* Found by fuzz_keyring: OpenSSL's decoder took other spellings of a
 * secret ('=' inside, stray low bits in the last letter). Only the one
 * base64 writes is a key. */
static void test_one_spelling(void **state)
{
	(void)state;
	uint8_t key[KEYRING_KEY_LEN];
	assert_int_equal(keyring_decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key), 0);
	assert_int_equal(key[31], 0x1f);
	static const char *const bad[] = {
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", /* stray bits */
		"PAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAK=", /* the fuzzer's */
		"AAEC=wQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* '=' inside */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A", /* no padding */
		" AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* a blank */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",	/* 43 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(keyring_decode(bad[i], key), -EINVAL);
	expect_error("[client.admin]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",
		     "kr:2: [client.admin] key: expected the base64 of a 32-byte secret");
}

static void test_new_key_round_trips(void **state)
{
	(void)state;
	char b64[64], text[160], b64_2[64];
	assert_int_equal(keyring_new_key_base64(b64, sizeof(b64)), 0);
	assert_int_equal(strlen(b64), 44);
	assert_int_equal(keyring_new_key_base64(b64_2, sizeof(b64_2)), 0);
	assert_string_not_equal(b64, b64_2);
	snprintf(text, sizeof(text), "[mon.]\nkey = %s\n", b64);
	struct keyring *kr;
	char err[256];
	assert_int_equal(keyring_load_string("kr", text, &kr, err, sizeof(err)), 0);
	keyring_free(kr);
}

static void test_pick_path(void **state)
{
	(void)state;
	char buf[256];
	assert_string_equal(keyring_pick_path("/k", "/etc/b/basalt.conf", "/v", buf, sizeof(buf)), "/k");
	assert_string_equal(keyring_pick_path(NULL, "/etc/b/basalt.conf", "/v", buf, sizeof(buf)), "/v");
	assert_string_equal(keyring_pick_path(NULL, "/etc/b/basalt.conf", NULL, buf, sizeof(buf)), "/etc/b/keyring");
}

static void test_proofs(void **state)
{
	(void)state;
	uint8_t key[KEYRING_KEY_LEN], other[KEYRING_KEY_LEN];
	uint8_t ni[AUTH_NONCE_LEN], na[AUTH_NONCE_LEN];
	uint8_t pa[AUTH_PROOF_LEN], pi[AUTH_PROOF_LEN];
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	assert_int_equal(auth_make_nonce(ni), 0);
	assert_int_equal(auth_make_nonce(na), 0);
	assert_memory_not_equal(ni, na, AUTH_NONCE_LEN);
	assert_int_equal(auth_make_proof(key, AUTH_ROLE_ACCEPTOR, "client.a", "osd.1", ni, na, pa), 0);
	assert_int_equal(auth_make_proof(key, AUTH_ROLE_INITIATOR, "client.a", "osd.1", ni, na, pi), 0);
	assert_true(auth_check_proof(key, AUTH_ROLE_ACCEPTOR, "client.a", "osd.1", ni, na, pa));
	assert_true(auth_check_proof(key, AUTH_ROLE_INITIATOR, "client.a", "osd.1", ni, na, pi));
	/* Reflection: the acceptor's proof is not a valid initiator proof. */
	assert_false(auth_check_proof(key, AUTH_ROLE_INITIATOR, "client.a", "osd.1", ni, na, pa));
	/* Wrong key, names or nonces all fail. */
	assert_false(auth_check_proof(other, AUTH_ROLE_ACCEPTOR, "client.a", "osd.1", ni, na, pa));
	assert_false(auth_check_proof(key, AUTH_ROLE_ACCEPTOR, "client.b", "osd.1", ni, na, pa));
	assert_false(auth_check_proof(key, AUTH_ROLE_ACCEPTOR, "client.a", "osd.2", ni, na, pa));
	assert_false(auth_check_proof(key, AUTH_ROLE_ACCEPTOR, "client.a", "osd.1", na, ni, pa));
	/* Names are length-prefixed: moving a character between them differs. */
	assert_false(auth_check_proof(key, AUTH_ROLE_ACCEPTOR, "client.ao", "sd.1", ni, na, pa));
}

/* A keyring that cannot be read is named as a keyring, with its path. */
static void test_missing_file(void **state)
{
	(void)state;
	struct keyring *kr = NULL;
	char err[256];
	assert_int_equal(keyring_load("/nonexistent/basalt.keyring", &kr, err, sizeof(err)), -ENOENT);
	assert_null(kr);
	assert_string_equal(err,
			    "cannot open the keyring /nonexistent/basalt.keyring: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_and_find),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_entity_name),
		cmocka_unit_test(test_one_spelling),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_new_key_round_trips),
		cmocka_unit_test(test_pick_path),
		cmocka_unit_test(test_proofs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
