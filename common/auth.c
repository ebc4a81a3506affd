/* HMAC-SHA256 proofs for the messenger's handshake, through OpenSSL. */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "enc.h"

static const char auth_label[] = "basalt-auth-v1";

int auth_make_nonce(uint8_t nonce[AUTH_NONCE_LEN])
{
	return RAND_bytes(nonce, AUTH_NONCE_LEN) == 1 ? 0 : -EIO;
}

int auth_make_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		    const char *name_initiator, const char *name_acceptor,
		    const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		    const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		    uint8_t proof[AUTH_PROOF_LEN])
{
	/* Length-prefixed fields, so no two inputs encode the same. */
	uint8_t msg[sizeof(auth_label) + 1 + 2 * (2 + KEYRING_NAME_MAX) +
		    2 * AUTH_NONCE_LEN];
	struct enc e;
	enc_init(&e, msg, sizeof(msg));
	enc_put_bytes(&e, auth_label, sizeof(auth_label) - 1);
	enc_put_u8(&e, (uint8_t)role);
	enc_put_str(&e, name_initiator);
	enc_put_str(&e, name_acceptor);
	enc_put_bytes(&e, nonce_initiator, AUTH_NONCE_LEN);
	enc_put_bytes(&e, nonce_acceptor, AUTH_NONCE_LEN);
	if (enc_status(&e))
		return -EINVAL;
	unsigned int len = AUTH_PROOF_LEN;
	if (!HMAC(EVP_sha256(), key, KEYRING_KEY_LEN, msg, e.pos, proof, &len) ||
	    len != AUTH_PROOF_LEN)
		return -EIO;
	return 0;
}

bool auth_check_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		      const char *name_initiator, const char *name_acceptor,
		      const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		      const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		      const uint8_t proof[AUTH_PROOF_LEN])
{
	uint8_t expected[AUTH_PROOF_LEN];
	if (auth_make_proof(key, role, name_initiator, name_acceptor,
			    nonce_initiator, nonce_acceptor, expected))
		return false;
	bool ok = CRYPTO_memcmp(expected, proof, AUTH_PROOF_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}
