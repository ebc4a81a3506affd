/* Mutual challenge/response with HMAC-SHA256 over a shared secret.
 *
 *   initiator                              acceptor
 *   HELLO(name_i, nonce_i)        ---->
 *                                 <----    HELLO(name_a, nonce_a, proof_a)
 *   AUTH(proof_i)                 ---->
 *                                 <----    AUTH_OK
 *
 * proof_X = HMAC-SHA256(secret(name_i), "basalt-auth-v1" | role_X |
 *                       name_i | name_a | nonce_i | nonce_a)
 * with role 'A' for the acceptor's proof and 'I' for the initiator's, so a
 * proof can neither be replayed (fresh nonces on both sides) nor reflected
 * (the role differs). Comparison is constant-time. */
#ifndef BASALT_COMMON_AUTH_H
#define BASALT_COMMON_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "keyring.h"

#define AUTH_NONCE_LEN 32
#define AUTH_PROOF_LEN 32
#define AUTH_KEY_ID_LEN 8
#define AUTH_GCM_NONCE_LEN 12
#define AUTH_GCM_TAG_LEN 16
/* What auth_seal adds to what it seals: the nonce before, the tag after. */
#define AUTH_SEAL_OVERHEAD (AUTH_GCM_NONCE_LEN + AUTH_GCM_TAG_LEN)

enum auth_role { AUTH_ROLE_INITIATOR = 'I', AUTH_ROLE_ACCEPTOR = 'A' };

/* Fills NONCE from the OS's CSPRNG. 0 or -EIO. */
int auth_make_nonce(uint8_t nonce[AUTH_NONCE_LEN] /* out */);

/* Computes the proof described above. 0 or -EIO. */
int auth_make_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		    const char *name_initiator, const char *name_acceptor,
		    const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		    const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		    uint8_t proof[AUTH_PROOF_LEN] /* out */);

/* Constant-time check of PROOF against the expected one. */
bool auth_check_proof(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
		      const char *name_initiator, const char *name_acceptor,
		      const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		      const uint8_t nonce_acceptor[AUTH_NONCE_LEN],
		      const uint8_t proof[AUTH_PROOF_LEN]);

/* The same bound to a channel: BINDING (up to 64 bytes: the TLS session's
 * exported keying material in secure mode) is covered too, so a proof
 * made inside one TLS session is worthless in any other. */
int auth_make_proof_bound(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
			  const char *name_initiator, const char *name_acceptor,
			  const uint8_t nonce_initiator[AUTH_NONCE_LEN],
			  const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
			  size_t binding_len, uint8_t proof[AUTH_PROOF_LEN] /* out */);
bool auth_check_proof_bound(const uint8_t key[KEYRING_KEY_LEN], enum auth_role role,
			    const char *name_initiator, const char *name_acceptor,
			    const uint8_t nonce_initiator[AUTH_NONCE_LEN],
			    const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
			    size_t binding_len, const uint8_t proof[AUTH_PROOF_LEN]);

/* A key for one purpose derived from KEY: HMAC-SHA256(KEY, LABEL).
 * 0 or -EIO. */
int auth_derive(const uint8_t key[KEYRING_KEY_LEN], const char *label,
		uint8_t out[KEYRING_KEY_LEN] /* out */);

/* The public fingerprint of KEY (the first 8 bytes of HMAC-SHA256(KEY,
 * "basalt-key-id-v1")): tells an acceptor which of an entity's keys the
 * initiator holds — the current one, or the one a rotation keeps valid
 * for its grace — without revealing anything of it. 0 or -EIO. */
int auth_key_id(const uint8_t key[KEYRING_KEY_LEN], uint8_t id[AUTH_KEY_ID_LEN] /* out */);

/* The key both ends of an authenticated connection share, and nobody
 * else: HMAC-SHA256(KEY, "basalt-session-v1" | names | nonces | BINDING),
 * BINDING being the TLS channel's exported keying material in secure
 * mode (BINDING_LEN 0 otherwise). What a connection must hand over in
 * secret (a new client key) travels sealed under it. 0 or -EIO. */
int auth_session_key(const uint8_t key[KEYRING_KEY_LEN], const char *name_initiator,
		     const char *name_acceptor, const uint8_t nonce_initiator[AUTH_NONCE_LEN],
		     const uint8_t nonce_acceptor[AUTH_NONCE_LEN], const uint8_t *binding,
		     size_t binding_len, uint8_t session[KEYRING_KEY_LEN] /* out */);

/* AES-256-GCM of IN (LEN bytes) into OUT (LEN bytes) with TAG, or, when
 * !ENCRYPT, its opening checked against TAG. AAD1 and AAD2 (either may
 * be empty) are authenticated, not encrypted. 0, -EBADMSG (the tag does
 * not match) or -ENOMEM. */
int auth_gcm(const uint8_t key[KEYRING_KEY_LEN], bool encrypt,
	     const uint8_t nonce[AUTH_GCM_NONCE_LEN], const void *aad1, size_t aad1_len,
	     const void *aad2, size_t aad2_len, const void *in, size_t len, void *out,
	     uint8_t tag[AUTH_GCM_TAG_LEN]);

/* Seals IN under KEY for one PURPOSE (a label authenticated with it, so a
 * blob sealed for one use is refused by another): OUT receives
 * LEN + AUTH_SEAL_OVERHEAD bytes, a random nonce first. 0 or -EIO. */
int auth_seal(const uint8_t key[KEYRING_KEY_LEN], const char *purpose, const void *in,
	      size_t len, uint8_t *out /* out */);
/* Opens what auth_seal made (LEN bytes, overhead included) into OUT
 * (LEN - AUTH_SEAL_OVERHEAD bytes). 0, or -EBADMSG when the key, the
 * purpose or a byte of it differs. */
int auth_open(const uint8_t key[KEYRING_KEY_LEN], const char *purpose, const uint8_t *in,
	      size_t len, void *out /* out */);

#endif
