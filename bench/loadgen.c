/*
 * loadgen: the load generator of `make bench` (C, OpenSSL, epoll).
 *
 * A compiled client, so that the client side is cheap and measurable: it reports
 * its own CPU time, and bench/run.py checks it is well below one core per thread
 * (the generator is then not the limit). Built by bench/run.py with
 *   gcc -O2 -o loadgen loadgen.c -lssl -lcrypto -lpthread
 *
 * Modes (every loop is bounded by a duration and a count; loopback addresses only):
 *   hs    full TLS handshakes, closed loop: -c connections in flight over -t threads,
 *         each connect + handshake (no session reuse) + close_notify + close, for -d s.
 *   hold  open -n sessions (-c at a time), keep them idle; print "HELD ok failed" and
 *         wait for a line (or EOF) on stdin, at most -d s; then close them all.
 *   echo  one session; write -b byte records and read the echo, for -d s.
 *   backend  a plain-TCP echo server on 127.0.0.1:-p for -d s (behind nginx stream).
 *
 * Output: one JSON object on stdout (hold: the HELD line first).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

static const char *g_host = "127.0.0.1";
static int g_port = 0;
static int g_conc = 16;
static int g_threads = 1;
static double g_duration = 5.0;
static long g_count = 0; /* hs: stop after this many (0: no limit); hold: sessions */
static int g_block = 16384;
static int g_window = 8; /* echo: records in flight */
static const char *g_sni = "localhost";
static SSL_CTX *g_ctx;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void resolve(void) {
    memset(&g_addr, 0, sizeof g_addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&g_addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&g_addr;
    if (inet_pton(AF_INET, g_host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(g_port);
        g_addrlen = sizeof *a4;
    } else if (inet_pton(AF_INET6, g_host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(g_port);
        g_addrlen = sizeof *a6;
    } else {
        fprintf(stderr, "loadgen: %s is not an IP address\n", g_host);
        exit(2);
    }
    /* Loopback only: this is a benchmark of local servers. */
    if (a4->sin_family == AF_INET && (ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: refusing a non-loopback address %s\n", g_host);
        exit(2);
    }
    if (a4->sin_family == AF_INET6 && !IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
        fprintf(stderr, "loadgen: refusing a non-loopback address %s\n", g_host);
        exit(2);
    }
}

static int open_socket(void) {
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&g_addr, g_addrlen) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- hs and hold: many connections on one epoll ------------------------------------------ */

enum { S_CONNECTING, S_HANDSHAKE, S_HELD };

typedef struct {
    int fd;
    int state;
    SSL *ssl;
    double t0;
} conn_t;

typedef struct {
    int id;
    int slots;
    long done, failed;
    double *lat;
    long nlat, caplat;
    double t_end;
    double t_stop; /* when the measured window ended (hs) */
    long limit; /* per-thread count limit for hs (0: none) */
    int hold;   /* hold mode: do not reconnect after a handshake */
    long held;
    char version[32], cipher[64], group[32];
} worker_t;

static void conn_close(conn_t *c, int epfd, int send_close_notify) {
    if (c->ssl) {
        if (send_close_notify) SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static int conn_start(conn_t *c, int epfd) {
    c->fd = open_socket();
    if (c->fd < 0) return -1;
    c->state = S_CONNECTING;
    c->ssl = NULL;
    c->t0 = now();
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void lat_add(worker_t *w, double v) {
    if (w->nlat == w->caplat) {
        w->caplat = w->caplat ? w->caplat * 2 : 65536;
        w->lat = realloc(w->lat, w->caplat * sizeof(double));
    }
    w->lat[w->nlat++] = v;
}

/* Drive one connection; returns 1 when its handshake completed, -1 on failure, 0 otherwise. */
static int conn_step(conn_t *c, int epfd) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) return -1;
        c->ssl = SSL_new(g_ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, g_sni);
        c->state = S_HANDSHAKE;
    }
    if (c->state == S_HANDSHAKE) {
        int r = SSL_connect(c->ssl);
        if (r == 1) return 1;
        int e = SSL_get_error(c->ssl, r);
        struct epoll_event ev = {.data.ptr = c};
        if (e == SSL_ERROR_WANT_READ)
            ev.events = EPOLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev.events = EPOLLOUT;
        else {
            ERR_clear_error();
            return -1;
        }
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    /* S_HELD: drain what the server sends (session tickets), never answer. */
    char buf[4096];
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return -1;
    }
    return 0;
}

static void *worker_run(void *arg) {
    worker_t *w = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc(w->hold ? (size_t)g_count : (size_t)w->slots, sizeof(conn_t));
    long opened = 0, inflight = 0;
    long target = w->hold ? g_count : 0;
    for (int i = 0; i < w->slots && (!w->hold || opened < target); i++) {
        conn_t *c = &conns[w->hold ? opened : i];
        c->fd = -1;
        if (conn_start(c, epfd) == 0) {
            opened++;
            inflight++;
        } else
            w->failed++;
    }
    struct epoll_event evs[256];
    /* hs: at the end (time or count) start no new connection, let those in flight finish for at
     * most DRAIN seconds (so that no server logs aborted handshakes), count only the window. */
    const double DRAIN = 2.0;
    int draining = 0;
    long live = w->hold ? 0 : inflight;
    double t_stop = w->t_end;
    for (;;) {
        double t = now();
        if (!draining && !w->hold && (t >= w->t_end || (w->limit && w->done >= w->limit))) {
            draining = 1;
            t_stop = t;
        }
        if (draining && (live == 0 || t >= t_stop + DRAIN)) {
            w->t_stop = t_stop;
            break;
        }
        if (w->hold && (t >= w->t_end || w->held + w->failed >= target)) break;
        int n = epoll_wait(epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int was_held = c->state == S_HELD;
            int r = conn_step(c, epfd);
            if (r == 0) continue;
            if (was_held) { /* the server closed an idle session */
                conn_close(c, epfd, 0);
                w->held--;
                w->failed++;
                continue;
            }
            if (draining) { /* finished after the window: close cleanly, do not count */
                conn_close(c, epfd, r == 1);
                live--;
                continue;
            }
            if (r == 1) {
                if (w->done == 0) {
                    snprintf(w->version, sizeof w->version, "%s", SSL_get_version(c->ssl));
                    snprintf(w->cipher, sizeof w->cipher, "%s", SSL_get_cipher_name(c->ssl));
                    int nid = SSL_get_negotiated_group(c->ssl);
                    const char *g = nid ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : "";
                    snprintf(w->group, sizeof w->group, "%s", g ? g : "");
                }
                w->done++;
                lat_add(w, now() - c->t0);
            } else
                w->failed++;
            if (w->hold) {
                inflight--;
                if (r == 1) {
                    c->state = S_HELD;
                    w->held++;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                } else
                    conn_close(c, epfd, 0);
                while (inflight < w->slots && opened < target) {
                    conn_t *nc = &conns[opened++];
                    nc->fd = -1;
                    if (conn_start(nc, epfd) == 0)
                        inflight++;
                    else
                        w->failed++;
                }
            } else {
                conn_close(c, epfd, r == 1);
                if (conn_start(c, epfd) != 0) w->failed++;
            }
        }
    }
    if (w->hold) {
        /* Keep the sessions; the main thread waits for the go-ahead, then exits (the kernel closes). */
        return NULL;
    }
    for (int i = 0; i < w->slots; i++)
        if (conns[i].fd >= 0) conn_close(&conns[i], epfd, 0);
    close(epfd);
    free(conns);
    return NULL;
}

static double pct(double *v, long n, double p) {
    if (n == 0) return 0;
    long i = (long)(p * (n - 1) + 0.5);
    return v[i];
}

static int run_hs(int hold) {
    worker_t *ws = calloc(g_threads, sizeof(worker_t));
    pthread_t *th = calloc(g_threads, sizeof(pthread_t));
    double t0 = now(), c0 = cpu_seconds();
    for (int i = 0; i < g_threads; i++) {
        ws[i].id = i;
        ws[i].slots = g_conc / g_threads + (i < g_conc % g_threads);
        ws[i].t_end = t0 + g_duration;
        ws[i].limit = g_count ? g_count / g_threads : 0;
        ws[i].hold = hold;
        pthread_create(&th[i], NULL, worker_run, &ws[i]);
        if (hold) break; /* hold mode: one thread owns every session */
    }
    int nth = hold ? 1 : g_threads;
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    double window = 0;
    for (int i = 0; i < (hold ? 1 : g_threads); i++)
        if (ws[i].t_stop - t0 > window) window = ws[i].t_stop - t0;
    if (hold || window <= 0) window = wall;
    long done = 0, failed = 0, nlat = 0;
    for (int i = 0; i < nth; i++) {
        done += ws[i].done;
        failed += ws[i].failed;
        nlat += ws[i].nlat;
    }
    double *lat = malloc((nlat + 1) * sizeof(double));
    long k = 0;
    for (int i = 0; i < nth; i++) {
        memcpy(lat + k, ws[i].lat, ws[i].nlat * sizeof(double));
        k += ws[i].nlat;
    }
    qsort(lat, nlat, sizeof(double), cmp_double);
    if (hold) {
        printf("HELD %ld %ld\n", ws[0].held, failed);
        fflush(stdout);
        /* Wait for the harness (a line or EOF on stdin), bounded by the duration. */
        struct pollfd p = {.fd = 0, .events = POLLIN};
        poll(&p, 1, (int)(g_duration * 1000));
    }
    printf("{\"mode\": \"%s\", \"handshakes\": %ld, \"failed\": %ld, \"seconds\": %.4f, \"rate\": %.1f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
           "\"client_cpu_seconds\": %.4f, \"client_cpu_per_thread\": %.3f, \"threads\": %d, \"concurrency\": %d, "
           "\"version\": \"%s\", \"cipher\": \"%s\", \"group\": \"%s\"}\n",
           hold ? "hold" : "hs", done, failed, window, done / window, pct(lat, nlat, 0.5) * 1e3, pct(lat, nlat, 0.9) * 1e3,
           pct(lat, nlat, 0.99) * 1e3, nlat ? lat[nlat - 1] * 1e3 : 0.0, cpu, cpu / wall / nth, nth, g_conc,
           ws[0].version, ws[0].cipher, ws[0].group);
    return failed && !done ? 1 : 0;
}

/* ---- echo: one stream ------------------------------------------------------------------------ */

static int wait_fd(int fd, short events, int ms) {
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, ms);
}

static int run_echo(void) {
    int fd = open_socket();
    if (fd < 0) {
        perror("loadgen: connect");
        return 1;
    }
    wait_fd(fd, POLLOUT, 5000);
    SSL *ssl = SSL_new(g_ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, g_sni);
    double deadline = now() + 10;
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1) break;
        int e = SSL_get_error(ssl, r);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || now() > deadline) {
            fprintf(stderr, "loadgen: handshake failed\n");
            ERR_print_errors_fp(stderr);
            return 1;
        }
        wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 1000);
    }
    char *out = malloc(g_block), *in = malloc(65536);
    memset(out, 'x', g_block);
    out[g_block - 1] = '\n'; /* gnutls-serv --echo answers line by line */
    const long window = (long)g_window * g_block; /* records in flight: enough to keep both sides busy */
    long sent = 0, recvd = 0;
    double t0 = now(), c0 = cpu_seconds(), t_end = t0 + g_duration;
    double t_warm = t0 + (g_duration > 2 ? 0.5 : 0.0);
    long recvd_at_warm = -1;
    double warm_t = t0;
    while (now() < t_end) {
        int progressed = 0;
        if (sent - recvd < window) {
            int r = SSL_write(ssl, out, g_block);
            if (r > 0) {
                sent += r;
                progressed = 1;
            } else {
                int e = SSL_get_error(ssl, r);
                if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) break;
            }
        }
        for (;;) {
            int r = SSL_read(ssl, in, 65536);
            if (r > 0) {
                recvd += r;
                progressed = 1;
                continue;
            }
            int e = SSL_get_error(ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) goto done;
            break;
        }
        if (recvd_at_warm < 0 && now() >= t_warm) {
            recvd_at_warm = recvd;
            warm_t = now();
        }
        if (!progressed) wait_fd(fd, sent - recvd < window ? POLLIN | POLLOUT : POLLIN, 100);
    }
done:;
    double t1 = now(), cpu = cpu_seconds() - c0;
    if (recvd_at_warm < 0) {
        recvd_at_warm = 0;
        warm_t = t0;
    }
    double mbps = (recvd - recvd_at_warm) / (t1 - warm_t) / 1e6;
    printf("{\"mode\": \"echo\", \"bytes\": %ld, \"seconds\": %.4f, \"mb_per_s\": %.1f, \"block\": %d, "
           "\"client_cpu_seconds\": %.4f, \"client_cpu_per_thread\": %.3f, \"version\": \"%s\", \"cipher\": \"%s\"}\n",
           recvd, t1 - t0, mbps, g_block, cpu, cpu / (t1 - t0), SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return recvd > 0 ? 0 : 1;
}

/* ---- backend: plain TCP echo, the upstream of nginx's stream proxy ------------------------ */

static int run_backend(void) {
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1024) < 0) {
        perror("loadgen backend");
        return 1;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[64];
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);
    char *buf = malloc(262144);
    double t_end = now() + g_duration;
    while (now() < t_end) {
        int n = epoll_wait(epfd, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, 262144);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                close(fd);
                continue;
            }
            /* Blocking-style write of what was read: the stream is one echo, back-pressure is the peer's. */
            ssize_t off = 0;
            while (off < r) {
                ssize_t w = write(fd, buf + off, r - off);
                if (w > 0)
                    off += w;
                else if (w < 0 && errno == EAGAIN)
                    wait_fd(fd, POLLOUT, 1000);
                else
                    break;
            }
        }
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen hs|hold|echo|backend -p PORT [-h 127.0.0.1] [-c 16] [-t 1] [-d 5] [-n COUNT] [-b 16384]\n"
            "       [-s localhost] [-v 1.3|1.2] [-w 8 (echo: records in flight)]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *mode = argv[1];
    const char *version = "1.3";
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "p:h:c:t:d:n:b:s:v:w:")) != -1) {
        switch (opt) {
        case 'p': g_port = atoi(optarg); break;
        case 'h': g_host = optarg; break;
        case 'c': g_conc = atoi(optarg); break;
        case 't': g_threads = atoi(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 'n': g_count = atol(optarg); break;
        case 'b': g_block = atoi(optarg); break;
        case 's': g_sni = optarg; break;
        case 'v': version = optarg; break;
        case 'w': g_window = atoi(optarg); break;
        default: usage();
        }
    }
    if (!g_port || g_conc < 1 || g_threads < 1 || g_duration <= 0 || g_duration > 600) usage();
    if (g_threads > g_conc) g_threads = g_conc;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    resolve();
    g_ctx = SSL_CTX_new(TLS_client_method());
    int v = strcmp(version, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(g_ctx, v);
    SSL_CTX_set_max_proto_version(g_ctx, v);
    /* Every handshake is a full one: no client session cache, no tickets kept. The chain is not
     * verified (the same for every server), but the CertificateVerify signature always is. */
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
    /* One key share that every peer accepts, so that no server answers with a HelloRetryRequest. */
    SSL_CTX_set1_groups_list(g_ctx, "X25519");
    if (strcmp(mode, "hs") == 0) return run_hs(0);
    if (strcmp(mode, "hold") == 0) {
        if (g_count < 1) usage();
        return run_hs(1);
    }
    if (strcmp(mode, "echo") == 0) return run_echo();
    if (strcmp(mode, "backend") == 0) return run_backend();
    usage();
    return 2;
}
