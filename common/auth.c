/* HMAC-SHA256 proofs for the messenger's handshake, the session key
 * derived from them, and AES-256-GCM sealing, through OpenSSL. */
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

int auth_make_proof_bound(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
			  const char *name_initiator, const char *name_acceptor,
			  const uint8_t nonce_initiator[AUTH_NONCE_LEN],
			  const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
			  size_t binding_len, uint8_t proof[AUTH_PROOF_LEN])
{
	/* Length-prefixed fields, so no two inputs encode the same. */
	uint8_t msg[sizeof(auth_label) + 1 + 2 * (2 + KEYRING_NAME_MAX) +
		    2 * AUTH_NONCE_LEN + 2 + 64];
	struct enc e;
	enc_init(&e, msg, sizeof(msg));
	enc_put_bytes(&e, auth_label, sizeof(auth_label) - 1);
	enc_put_u8(&e, (uint8_t)role);
	enc_put_str(&e, name_initiator);
	enc_put_str(&e, name_acceptor);
	enc_put_bytes(&e, nonce_initiator, AUTH_NONCE_LEN);
	enc_put_bytes(&e, nonce_acceptor, AUTH_NONCE_LEN);
	if (binding_len) {
		enc_put_le16(&e, (uint16_t)binding_len);
		enc_put_bytes(&e, binding, binding_len);
	}
	if (enc_status(&e) || binding_len > 64)
		return -EINVAL;
	unsigned int len = AUTH_PROOF_LEN;
	if (!HMAC(EVP_sha256(), key, KEYRING_KEY_LEN, msg, e.pos, proof, &len) ||
	    len != AUTH_PROOF_LEN)
		return -EIO;
	return 0;
}

int auth_make_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		    const char *name_initiator, const char *name_acceptor,
		    const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		    const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		    uint8_t proof[AUTH_PROOF_LEN])
{
	return auth_make_proof_bound(key, role, name_initiator, name_acceptor, nonce_initiator,
				     nonce_acceptor, NULL, 0, proof);
}

bool auth_check_proof_bound(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
			    const char *name_initiator, const char *name_acceptor,
			    const uint8_t nonce_initiator[AUTH_NONCE_LEN],
			    const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
			    size_t binding_len, const uint8_t proof[AUTH_PROOF_LEN])
{
	uint8_t expected[AUTH_PROOF_LEN];
	if (auth_make_proof_bound(key, role, name_initiator, name_acceptor, nonce_initiator,
				  nonce_acceptor, binding, binding_len, expected))
		return false;
	bool ok = CRYPTO_memcmp(expected, proof, AUTH_PROOF_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}

bool auth_check_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		      const char *name_initiator, const char *name_acceptor,
		      const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		      const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		      const uint8_t proof[AUTH_PROOF_LEN])
{
	return auth_check_proof_bound(key, role, name_initiator, name_acceptor, nonce_initiator,
				      nonce_acceptor, NULL, 0, proof);
}

static int hmac_sha256(const uint8_t key[KEYRING_KEY_LEN], const void *msg, size_t len,
		       uint8_t out[32])
{
	unsigned int n = 32;
	return HMAC(EVP_sha256(), key, KEYRING_KEY_LEN, msg, len, out, &n) && n == 32 ? 0 : -EIO;
}

int auth_derive(const uint8_t key[KEYRING_KEY_LEN], const char *label,
		uint8_t out[KEYRING_KEY_LEN])
{
	return hmac_sha256(key, label, strlen(label), out);
}

int auth_key_id(const uint8_t key[KEYRING_KEY_LEN], uint8_t id[AUTH_KEY_ID_LEN])
{
	uint8_t mac[32];
	int rc = auth_derive(key, "basalt-key-id-v1", mac);
	memcpy(id, mac, AUTH_KEY_ID_LEN);
	return rc;
}

int auth_session_key(const uint8_t key[KEYRING_KEY_LEN], const char *name_initiator,
		     const char *name_acceptor, const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		     const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
		     size_t binding_len, uint8_t session[KEYRING_KEY_LEN])
{
	static const char label[] = "basalt-session-v1";
	uint8_t msg[sizeof(label) + 2 * (2 + KEYRING_NAME_MAX) + 2 * AUTH_NONCE_LEN + 2 + 64];
	struct enc e;
	enc_init(&e, msg, sizeof(msg));
	enc_put_bytes(&e, label, sizeof(label) - 1);
	enc_put_str(&e, name_initiator);
	enc_put_str(&e, name_acceptor);
	enc_put_bytes(&e, nonce_initiator, AUTH_NONCE_LEN);
	enc_put_bytes(&e, nonce_acceptor, AUTH_NONCE_LEN);
	enc_put_le16(&e, (uint16_t)binding_len);
	enc_put_bytes(&e, binding, binding_len);
	if (enc_status(&e) || binding_len > 64)
		return -EINVAL;
	int rc = hmac_sha256(key, msg, e.pos, session);
	OPENSSL_cleanse(msg, sizeof(msg));
	return rc;
}

int auth_gcm(const uint8_t key[KEYRING_KEY_LEN], bool encrypt,
	     const uint8_t nonce[AUTH_GCM_NONCE_LEN], const void *aad1, size_t aad1_len,
	     const void *aad2, size_t aad2_len, const void *in, size_t len, void *out,
	     uint8_t tag[AUTH_GCM_TAG_LEN])
{
	if (len > INT32_MAX || aad1_len > INT32_MAX || aad2_len > INT32_MAX)
		return -EINVAL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	int n, ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, encrypt);
	ok = ok && (!aad1_len || EVP_CipherUpdate(ctx, NULL, &n, aad1, (int)aad1_len));
	ok = ok && (!aad2_len || EVP_CipherUpdate(ctx, NULL, &n, aad2, (int)aad2_len));
	ok = ok && (!len || EVP_CipherUpdate(ctx, out, &n, in, (int)len));
	if (ok && !encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AUTH_GCM_TAG_LEN, tag);
	ok = ok && EVP_CipherFinal_ex(ctx, (uint8_t *)out + len, &n);
	if (ok && encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AUTH_GCM_TAG_LEN, tag);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

int auth_seal(const uint8_t key[KEYRING_KEY_LEN], const char *purpose, const void *in,
	      size_t len, uint8_t *out)
{
	if (RAND_bytes(out, AUTH_GCM_NONCE_LEN) != 1)
		return -EIO;
	uint8_t *body = out + AUTH_GCM_NONCE_LEN;
	return auth_gcm(key, true, out, purpose, strlen(purpose), NULL, 0, in, len, body,
			body + len) ? -EIO : 0;
}

int auth_open(const uint8_t key[KEYRING_KEY_LEN], const char *purpose, const uint8_t *in,
	      size_t len, void *out)
{
	if (len < AUTH_SEAL_OVERHEAD)
		return -EBADMSG;
	size_t body = len - AUTH_SEAL_OVERHEAD;
	uint8_t tag[AUTH_GCM_TAG_LEN];
	memcpy(tag, in + AUTH_GCM_NONCE_LEN + body, sizeof(tag));
	int rc = auth_gcm(key, false, in, purpose, strlen(purpose), NULL, 0,
			  in + AUTH_GCM_NONCE_LEN, body, out, tag);
	if (rc)
		OPENSSL_cleanse(out, body);
	return rc ? -EBADMSG : 0;
}
