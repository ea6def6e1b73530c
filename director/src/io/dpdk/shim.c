/*
 * The C side of the DPDK backend (cargo feature `dpdk`), compiled by director/build.rs against
 * Debian's libdpdk-dev 22.11 through pkg-config.
 *
 * DPDK's fast path is static inline (rte_eth_rx_burst, rte_eth_tx_burst, rte_pktmbuf_*) and its
 * setup API is struct-heavy (rte_eth_conf, rte_eth_dev_info): both stay here, so Rust sees only
 * opaque pointers, integers and one flat stats struct, and no bindgen is needed.
 *
 * Errors are returned as negative errno values; rte_errno is folded in where DPDK uses it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* Mirrored by `ffi::Stats` in mod.rs: keep the field order. */
struct glbd_stats {
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

int glbd_eal_init(int argc, char **argv)
{
	int parsed = rte_eal_init(argc, argv);
	return parsed < 0 ? -rte_errno : parsed;
}

int glbd_eal_cleanup(void)
{
	return rte_eal_cleanup();
}

const char *glbd_strerror(int errnum)
{
	return rte_strerror(errnum);
}

/*
 * Gives the calling thread an lcore id, and so per-lcore mempool caches, unless it has one (the
 * EAL's own threads): 1 when registered now, 0 when not needed, a negative errno on failure.
 */
int glbd_thread_register(void)
{
	if (rte_lcore_id() != LCORE_ID_ANY)
		return 0;
	return rte_thread_register() == 0 ? 1 : -rte_errno;
}

void glbd_thread_unregister(void)
{
	rte_thread_unregister();
}

uint16_t glbd_port_count(void)
{
	return rte_eth_dev_count_avail();
}

int glbd_port_by_name(const char *name, uint16_t *port_id)
{
	return rte_eth_dev_get_port_by_name(name, port_id);
}

int glbd_port_mac(uint16_t port_id, uint8_t mac[6])
{
	struct rte_ether_addr addr;
	int ret = rte_eth_macaddr_get(port_id, &addr);
	if (ret == 0)
		memcpy(mac, addr.addr_bytes, 6);
	return ret;
}

/*
 * Configures `port_id` with `queues` RX and TX queue pairs (RSS across them when the device
 * hashes), one mbuf pool per queue (written to pools[q]; mbufs of `data_room` bytes, headroom
 * included), and starts it in promiscuous mode. On failure the pools made so far are freed.
 */
int glbd_port_setup(uint16_t port_id, uint16_t queues, uint16_t rx_desc, uint16_t tx_desc,
		    unsigned int mbufs, uint16_t data_room, uint16_t mtu, struct rte_mempool **pools)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int socket = rte_eth_dev_socket_id(port_id);
	int ret;
	uint16_t q;

	if (!rte_eth_dev_is_valid_port(port_id))
		return -ENODEV;
	ret = rte_eth_dev_info_get(port_id, &info);
	if (ret != 0)
		return ret;
	if (queues == 0 || queues > info.max_rx_queues || queues > info.max_tx_queues)
		return -EINVAL;
	memset(&conf, 0, sizeof(conf));
	if (mtu != 0)
		conf.rxmode.mtu = mtu;
	if (queues > 1 && info.flow_type_rss_offloads != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	}
	ret = rte_eth_dev_configure(port_id, queues, queues, &conf);
	if (ret != 0)
		return ret;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
	if (ret != 0)
		return ret;
	if (socket < 0)
		socket = (int)rte_socket_id();
	for (q = 0; q < queues; q++) {
		char name[RTE_MEMPOOL_NAMESIZE];
		snprintf(name, sizeof(name), "glbd_p%u_q%u", port_id, q);
		pools[q] = rte_pktmbuf_pool_create(name, mbufs, 256, 0, data_room, socket);
		if (pools[q] == NULL) {
			ret = -rte_errno;
			goto fail;
		}
		ret = rte_eth_rx_queue_setup(port_id, q, rx_desc, (unsigned int)socket, NULL, pools[q]);
		if (ret != 0) {
			q++;
			goto fail;
		}
		ret = rte_eth_tx_queue_setup(port_id, q, tx_desc, (unsigned int)socket, NULL);
		if (ret != 0) {
			q++;
			goto fail;
		}
	}
	ret = rte_eth_dev_start(port_id);
	if (ret != 0)
		goto fail;
	/* Virtual devices may not support it; the director still works for frames to its MAC. */
	(void)rte_eth_promiscuous_enable(port_id);
	return 0;
fail:
	rte_eth_dev_close(port_id);
	while (q-- > 0) {
		rte_mempool_free(pools[q]);
		pools[q] = NULL;
	}
	return ret;
}

/* Stops and closes the port (its queues release their mbufs); the caller then frees the pools. */
void glbd_port_close(uint16_t port_id)
{
	(void)rte_eth_dev_stop(port_id);
	(void)rte_eth_dev_close(port_id);
}

void glbd_pool_free(struct rte_mempool *pool)
{
	rte_mempool_free(pool);
}

int glbd_port_stats(uint16_t port_id, struct glbd_stats *out)
{
	struct rte_eth_stats s;
	int ret = rte_eth_stats_get(port_id, &s);
	if (ret != 0)
		return ret;
	out->ipackets = s.ipackets;
	out->opackets = s.opackets;
	out->ibytes = s.ibytes;
	out->obytes = s.obytes;
	out->imissed = s.imissed;
	out->ierrors = s.ierrors;
	out->oerrors = s.oerrors;
	out->rx_nombuf = s.rx_nombuf;
	return 0;
}

uint16_t glbd_rx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port_id, queue, pkts, n);
}

/* The data buffer of a received mbuf that may be rewritten in place (direct, not shared, one
 * segment): its start and size, and the frame's offset and length in it. -1 for any other mbuf. */
int glbd_mbuf_buffer(struct rte_mbuf *m, uint8_t **buf, uint16_t *size, uint16_t *off, uint16_t *len)
{
	if (m->nb_segs != 1 || !RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1 ||
	    (uint32_t)m->data_off + m->data_len > m->buf_len)
		return -1;
	*buf = m->buf_addr;
	*size = m->buf_len;
	*off = m->data_off;
	*len = m->data_len;
	return 0;
}

/* Records where the rewritten frame now lies in the mbuf's buffer (off + len <= buf_len). */
void glbd_mbuf_place(struct rte_mbuf *m, uint16_t off, uint16_t len)
{
	m->data_off = off;
	m->data_len = len;
	m->pkt_len = len;
}

/* Copies up to `cap` bytes of the frame (all segments) to `dst`; returns the bytes copied. */
uint32_t glbd_mbuf_copy(const struct rte_mbuf *m, uint8_t *dst, uint32_t cap)
{
	uint32_t len = rte_pktmbuf_pkt_len(m);
	const void *data;
	if (len > cap)
		len = cap;
	data = rte_pktmbuf_read(m, 0, len, dst);
	if (data == NULL)
		return 0;
	if (data != dst)
		memcpy(dst, data, len);
	return len;
}

void glbd_mbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

/* A fresh single-segment mbuf holding a copy of the frame; NULL when the pool is empty or the
 * frame does not fit one mbuf. */
struct rte_mbuf *glbd_mbuf_from(struct rte_mempool *pool, const uint8_t *data, uint32_t len)
{
	struct rte_mbuf *m;
	char *dst;
	if (len > UINT16_MAX)
		return NULL;
	m = rte_pktmbuf_alloc(pool);
	if (m == NULL)
		return NULL;
	dst = rte_pktmbuf_append(m, (uint16_t)len);
	if (dst == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memcpy(dst, data, len);
	return m;
}

uint16_t glbd_tx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port_id, queue, pkts, n);
}
