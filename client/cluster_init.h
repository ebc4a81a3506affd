/* A new cluster's config and keyring, made once (`basalt cluster init`):
 * the monitors and OSDs given as addresses, a fresh fsid, a fresh secret
 * for mon., client.admin and every osd.N. The files are then copied to
 * every server; nothing here talks to a cluster. */
#ifndef BASALT_CLIENT_CLUSTER_INIT_H
#define BASALT_CLIENT_CLUSTER_INIT_H

#include <stdbool.h>
#include <stddef.h>

/* Raft quorums of more than 7 monitors only add latency; OSDs up to what
 * the map takes in one go here (more are added by editing the config). */
#define CLUSTER_INIT_MONS_MAX 7
#define CLUSTER_INIT_OSDS_MAX 256
#define CLUSTER_INIT_MON_PORT 6789
#define CLUSTER_INIT_OSD_PORT 6800
/* With metrics: each daemon's metrics_addr, counted up per host alike. */
#define CLUSTER_INIT_MON_METRICS_PORT 9530
#define CLUSTER_INIT_OSD_METRICS_PORT 9540

struct cluster_init_spec {
	const char *mons[CLUSTER_INIT_MONS_MAX]; /* "HOST[:PORT]" ([IPv6]:PORT) */
	int n_mons;
	const char *osds[CLUSTER_INIT_OSDS_MAX]; /* "HOST[:PORT]=DEVICE" */
	int n_osds;
	const char *ms_mode;  /* NULL: the default (crc) */
	const char *data_dir; /* the monitors' data under it; NULL: /var/lib/basalt */
	bool metrics;	      /* a metrics_addr for every daemon */
};

/* The config and keyring texts for SPEC: monitors named a, b, c... in the
 * order given, OSDs numbered 0, 1... in the order given, each OSD's
 * failure domain (`host =`) the HOST of its address, its port by default
 * 6800 + how many OSDs of that HOST came before it; with METRICS each
 * daemon's metrics_addr on its HOST, 9530 up for monitors and 9540 up
 * for OSDs, counted per HOST the same way. 0 with *CONF and
 * *KEYRING (caller frees both; the keyring holds secrets: free it with
 * cluster_init_free_secret), or -EINVAL with WHY naming the bad argument,
 * -ENOMEM, -EIO (no randomness). */
int cluster_init_render(const struct cluster_init_spec *spec, char **conf /* out */,
			char **keyring /* out */, char *why, size_t why_len);

/* Writes CONF to CONF_PATH (mode 0644) and KEYRING to KEYRING_PATH (0600),
 * each created new and synced: an existing file of either name is never
 * touched (-EEXIST, nothing written). On a failure after the first file
 * was made, it is removed again. 0 or -errno with WHY. */
int cluster_init_write(const char *conf_path, const char *conf, const char *keyring_path,
		       const char *keyring, char *why, size_t why_len);

/* Wipes and frees a text that holds secrets. */
void cluster_init_free_secret(char *text);

#endif
