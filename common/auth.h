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

#endif
