/* basalt cluster init: a new cluster's config and keyring from a list of
 * monitor and OSD addresses (see cluster_init.h). The texts are built in
 * memory and checked by the same parsers the daemons use before anything
 * is written, and the files are only ever created, never replaced: a
 * second init over a running cluster's keyring would lock every daemon
 * out of it. */
#include "cluster_init.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/keyring.h"
#include "common/number.h"

#define HOST_MAX 256

struct endpoint {
	char host[HOST_MAX]; /* without brackets */
	unsigned port;	     /* 0: not given */
	bool v6;
};

/* "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" of WHAT ("--mon") into *E.
 * Whitespace, '=' and brackets cannot appear in a host: the config's
 * syntax would not keep them. */
static int endpoint_parse(const char *text, const char *what, struct endpoint *e, char *why,
			  size_t why_len)
{
	const char *host = text, *host_end, *rest;
	*e = (struct endpoint){ 0 };
	if (text[0] == '[') {
		host = text + 1;
		host_end = strchr(host, ']');
		if (!host_end) {
			snprintf(why, why_len, "%s '%s': no ']' after the IPv6 address", what, text);
			return -EINVAL;
		}
		rest = host_end + 1;
		e->v6 = true;
	} else {
		host_end = strchr(text, ':');
		if (host_end && strchr(host_end + 1, ':')) {
			snprintf(why, why_len, "%s '%s': an IPv6 address goes in brackets, "
				 "[::1]:6789", what, text);
			return -EINVAL;
		}
		host_end = host_end ? host_end : text + strlen(text);
		rest = host_end;
	}
	size_t n = (size_t)(host_end - host);
	if (n == 0 || n >= HOST_MAX || strcspn(host, " \t\r\n=[];#") < n) {
		snprintf(why, why_len, "%s '%s': expected HOST[:PORT] (a name or an address)",
			 what, text);
		return -EINVAL;
	}
	memcpy(e->host, host, n);
	if (*rest == '\0')
		return 0;
	uint64_t port;
	char text_why[256];
	if (*rest != ':' ||
	    number_parse_u64(rest + 1, "the port", 1, 65535, &port, text_why, sizeof(text_why))) {
		snprintf(why, why_len, "%s '%s': %s", what, text,
			 *rest != ':' ? "expected HOST[:PORT]" : text_why);
		return -EINVAL;
	}
	e->port = (unsigned)port;
	return 0;
}

static bool endpoint_same(const struct endpoint *a, const struct endpoint *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* How many of the first I endpoints of E share E[I]'s host. */
static unsigned same_host_before(const struct endpoint *e, int i)
{
	unsigned n = 0;
	for (int j = 0; j < i; j++)
		n += strcmp(e[j].host, e[i].host) == 0;
	return n;
}

/* The OSDs: "HOST[:PORT]=DEVICE" each, ports defaulted, into E and DEVS. */
static int osds_parse(const struct cluster_init_spec *s, struct endpoint *e, const char **devs,
		      char *why, size_t why_len)
{
	for (int i = 0; i < s->n_osds; i++) {
		const char *eq = strchr(s->osds[i], '=');
		if (!eq || eq[1] != '/') {
			snprintf(why, why_len, "--osd '%s': expected HOST[:PORT]=DEVICE, the "
				 "device an absolute path (10.0.0.1=/dev/nvme0n1)", s->osds[i]);
			return -EINVAL;
		}
		char addr[HOST_MAX + 16];
		snprintf(addr, sizeof(addr), "%.*s", (int)(eq - s->osds[i]), s->osds[i]);
		int rc = endpoint_parse(addr, "--osd", &e[i], why, why_len);
		if (rc)
			return rc;
		devs[i] = eq + 1;
		if (strcspn(devs[i], " \t\r\n;#") != strlen(devs[i])) {
			snprintf(why, why_len, "--osd '%s': the device path has a character the "
				 "config cannot hold", s->osds[i]);
			return -EINVAL;
		}
		if (!e[i].port)
			e[i].port = CLUSTER_INIT_OSD_PORT + same_host_before(e, i);
		for (int j = 0; j < i; j++)
			if (endpoint_same(&e[i], &e[j]) ||
			    (strcmp(e[i].host, e[j].host) == 0 && strcmp(devs[i], devs[j]) == 0)) {
				snprintf(why, why_len, "--osd '%s': the same address or device as "
					 "osd.%d", s->osds[i], j);
				return -EINVAL;
			}
	}
	return 0;
}

static int mons_parse(const struct cluster_init_spec *s, struct endpoint *e, char *why,
		      size_t why_len)
{
	if (s->n_mons < 1 || s->n_mons > CLUSTER_INIT_MONS_MAX) {
		snprintf(why, why_len, "give 1 to %d monitors (--mon HOST[:PORT]; 3 to survive "
			 "one server, 5 two)", CLUSTER_INIT_MONS_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < s->n_mons; i++) {
		int rc = endpoint_parse(s->mons[i], "--mon", &e[i], why, why_len);
		if (rc)
			return rc;
		if (!e[i].port)
			e[i].port = CLUSTER_INIT_MON_PORT;
		for (int j = 0; j < i; j++)
			if (endpoint_same(&e[i], &e[j])) {
				snprintf(why, why_len, "--mon '%s': given twice", s->mons[i]);
				return -EINVAL;
			}
	}
	return 0;
}

/* "host:port" as the config writes it (the last colon splits). */
static void endpoint_print(FILE *f, const char *key, const struct endpoint *e)
{
	fprintf(f, "%s = %s:%u\n", key, e->host, e->port);
}

static void metrics_print(FILE *f, const struct cluster_init_spec *s, const struct endpoint *e,
			  int i, unsigned base)
{
	if (!s->metrics)
		return;
	struct endpoint m = e[i];
	m.port = base + same_host_before(e, i);
	endpoint_print(f, "metrics_addr", &m);
}

static int conf_render(const struct cluster_init_spec *s, const struct endpoint *mons,
		       const struct endpoint *osds, const char **devs, char **out)
{
	uint8_t fsid[16];
	char fsid_hex[33];
	if (RAND_bytes(fsid, sizeof(fsid)) != 1)
		return -EIO;
	number_hex_encode(fsid, sizeof(fsid), fsid_hex);
	const char *data_dir = s->data_dir ? s->data_dir : "/var/lib/basalt";
	size_t len;
	FILE *f = open_memstream(out, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "# Made by basalt cluster init: the same file on every server.\n"
		   "[global]\nfsid = %s\n", fsid_hex);
	if (s->ms_mode)
		fprintf(f, "ms_mode = %s\n", s->ms_mode);
	for (int i = 0; i < s->n_mons; i++) {
		fprintf(f, "\n[mon.%c]\n", 'a' + i);
		endpoint_print(f, "addr", &mons[i]);
		fprintf(f, "data = %s/mon.%c\n", data_dir, 'a' + i);
		metrics_print(f, s, mons, i, CLUSTER_INIT_MON_METRICS_PORT);
	}
	for (int i = 0; i < s->n_osds; i++) {
		fprintf(f, "\n[osd.%d]\n", i);
		endpoint_print(f, "addr", &osds[i]);
		fprintf(f, "device = %s\nhost = %s\n", devs[i], osds[i].host);
		metrics_print(f, s, osds, i, CLUSTER_INIT_OSD_METRICS_PORT);
	}
	return fclose(f) ? -ENOMEM : 0;
}

static int keyring_render(int n_osds, char **out)
{
	size_t len;
	FILE *f = open_memstream(out, &len);
	if (!f)
		return -ENOMEM;
	int rc = 0;
	char key[64];
	fputs("# Secrets of the cluster: on every server, readable by root only.\n", f);
	for (int i = -2; i < n_osds && !rc; i++) {
		if (!(rc = keyring_new_key_base64(key, sizeof(key)))) {
			if (i == -2)
				fprintf(f, "[mon.]\nkey = %s\n", key);
			else if (i == -1)
				fprintf(f, "[client.admin]\nkey = %s\n", key);
			else
				fprintf(f, "[osd.%d]\nkey = %s\n", i, key);
		}
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (fclose(f))
		rc = -ENOMEM;
	if (rc) {
		cluster_init_free_secret(*out);
		*out = NULL;
	}
	return rc;
}

/* The texts again through the daemons' own parsers: what init writes,
 * they read. */
static int render_check(const char *conf, const char *keyring, char *why, size_t why_len)
{
	struct cfg *cfg;
	struct keyring *kr;
	int rc = cfg_load_string("basalt.conf", conf, &cfg, why, why_len);
	if (rc)
		return rc;
	cfg_free(cfg);
	if ((rc = keyring_load_string("keyring", keyring, &kr, why, why_len)))
		return rc;
	keyring_free(kr);
	return 0;
}

int cluster_init_render(const struct cluster_init_spec *s, char **conf, char **keyring,
			char *why, size_t why_len)
{
	struct endpoint mons[CLUSTER_INIT_MONS_MAX];
	const char *devs[CLUSTER_INIT_OSDS_MAX];
	*conf = *keyring = NULL;
	if (s->n_osds < 0 || s->n_osds > CLUSTER_INIT_OSDS_MAX) {
		snprintf(why, why_len, "at most %d OSDs at init", CLUSTER_INIT_OSDS_MAX);
		return -EINVAL;
	}
	if (s->ms_mode && strcmp(s->ms_mode, "crc") && strcmp(s->ms_mode, "secure")) {
		snprintf(why, why_len, "--ms-mode: expected crc or secure, got '%s'", s->ms_mode);
		return -EINVAL;
	}
	if (s->data_dir && s->data_dir[0] != '/') {
		snprintf(why, why_len, "--data-dir '%s': expected an absolute path", s->data_dir);
		return -EINVAL;
	}
	struct endpoint *osds = calloc(CLUSTER_INIT_OSDS_MAX, sizeof(*osds));
	if (!osds)
		return -ENOMEM;
	int rc = mons_parse(s, mons, why, why_len);
	if (!rc)
		rc = osds_parse(s, osds, devs, why, why_len);
	if (!rc && (rc = conf_render(s, mons, osds, devs, conf)))
		snprintf(why, why_len, "cannot build the config: %s", strerror(-rc));
	if (!rc && (rc = keyring_render(s->n_osds, keyring)))
		snprintf(why, why_len, "cannot make the keys: %s", strerror(-rc));
	if (!rc)
		rc = render_check(*conf, *keyring, why, why_len);
	free(osds);
	if (rc) {
		free(*conf);
		cluster_init_free_secret(*keyring);
		*conf = *keyring = NULL;
	}
	return rc;
}

/* Creates PATH with TEXT, synced; -errno with WHY. */
static int file_create(const char *path, const char *text, mode_t mode, char *why,
		       size_t why_len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		int rc = -errno;
		if (rc == -EEXIST)
			snprintf(why, why_len, "%s exists: cluster init never replaces a "
				 "cluster's config or keyring (move it away to start over)", path);
		else
			snprintf(why, why_len, "cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int rc = w == (ssize_t)n && fchmod(fd, mode) == 0 && fsync(fd) == 0 ? 0
		 : w >= 0 && w != (ssize_t)n ? -EIO : -errno;
	close(fd);
	if (rc) {
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(-rc));
		unlink(path);
	}
	return rc;
}

int cluster_init_write(const char *conf_path, const char *conf, const char *keyring_path,
		       const char *keyring, char *why, size_t why_len)
{
	/* Both checked first, so a refusal writes nothing. */
	const char *paths[] = { conf_path, keyring_path };
	for (int i = 0; i < 2; i++)
		if (access(paths[i], F_OK) == 0)
			return file_create(paths[i], "", 0600, why, why_len);
	int rc = file_create(keyring_path, keyring, 0600, why, why_len);
	if (rc)
		return rc;
	if ((rc = file_create(conf_path, conf, 0644, why, why_len)))
		unlink(keyring_path);
	return rc;
}

void cluster_init_free_secret(char *text)
{
	if (text)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
}
