/* OpenSSL's libcrypto, loaded on demand for JWT tokens (auth_jwt.c): linking it would keep
 * about 1.5 MiB of relocated pages resident in every server, JWT or not (idle RSS is a
 * target, docs/PERFORMANCE.md). The functions used are resolved once with dlsym; call them
 * as C(name)(...). */
#ifndef CETCD_AUTH_LIBCRYPTO_H
#define CETCD_AUTH_LIBCRYPTO_H

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stddef.h>

#define AUTH_CRYPTO_FUNCS(X)                                                                                   \
  X(BIO_free) X(BIO_new_mem_buf) X(BN_bin2bn) X(BN_bn2binpad) X(BN_free) X(CRYPTO_free) X(ECDSA_SIG_free)      \
  X(ECDSA_SIG_get0) X(ECDSA_SIG_new) X(ECDSA_SIG_set0) X(EVP_DecodeBlock) X(EVP_DigestSign)                    \
  X(EVP_DigestSignInit) X(EVP_DigestVerify) X(EVP_DigestVerifyInit) X(EVP_EncodeBlock) X(EVP_MD_CTX_free)      \
  X(EVP_MD_CTX_new) X(EVP_PKEY_CTX_set_rsa_padding) X(EVP_PKEY_CTX_set_rsa_pss_saltlen) X(EVP_PKEY_free)        \
  X(EVP_PKEY_get_base_id) X(EVP_sha256) X(EVP_sha384) X(EVP_sha512) X(HMAC) X(PEM_read_bio_PUBKEY)             \
  X(PEM_read_bio_PrivateKey) X(d2i_ECDSA_SIG) X(i2d_ECDSA_SIG)

#define AUTH_CRYPTO_DECL(f) extern __typeof__(&f) auth_p_##f;
AUTH_CRYPTO_FUNCS(AUTH_CRYPTO_DECL)
#undef AUTH_CRYPTO_DECL

/* A libcrypto function, once auth_libcrypto_load succeeded. */
#define C(f) auth_p_##f

/* Loads libcrypto.so.3 and resolves the functions (once; later calls return the first
 * outcome). Returns 0, or -1 with a reason in err. Loop thread. */
int auth_libcrypto_load(char *err, size_t errlen);

#endif
