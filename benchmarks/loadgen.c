/*
 * loadgen: a WebSocket load generator for the benchmarks, much cheaper per message than the
 * servers it measures. One thread, epoll, non-blocking sockets to 127.0.0.1:PORT. Every
 * payload the server sends back is checked byte for byte (fragmented messages too); any
 * surprise (wrong payload or opcode, masked or RSV frame, bad handshake, early close, missing
 * echo) prints a message on stderr and exits with status 1.
 *
 *   loadgen PORT CONNECTIONS SIZE DEPTH SECONDS [binary]      (same as: loadgen echo ...)
 *       CONNECTIONS connections each keep DEPTH messages of SIZE bytes in flight and send a
 *       new one for every echo, for SECONDS seconds (the first half second is not counted).
 *       Prints: messages, messages_per_s, mb_per_s (echoed payload, one direction),
 *       p50_us/p99_us round trip, per_conn_min/per_conn_max (echoes of the least and the
 *       most served connection: a server that starves some connections shows a 0).
 *
 *   loadgen handshake PORT CONCURRENCY SECONDS
 *       CONCURRENCY loops, each: connect, upgrade, one 32-byte text echo, Close (1000), wait
 *       for the server's Close and for it to close TCP, then start over. Prints
 *       connections_per_s and p50_us/p99_us for one whole connection.
 *
 *   loadgen idle PORT N
 *       Opens N connections (upgraded), prints {"event": "open", ...}, then waits for a line on
 *       stdin (the caller measures the server meanwhile); then every connection sends one
 *       32-byte text message and all N echoes must come back. Prints the result, then holds
 *       the connections until one more line (or EOF) on stdin.
 *
 *   loadgen broadcast PORT N SECONDS [SIZE]
 *       Opens N connections; connection 0 sends the text "broadcast:<seq>:xxx..." (SIZE bytes,
 *       default 32), which the server must send to all N connections (the sender included);
 *       once all N have it, the next one goes out, for SECONDS seconds. Prints deliveries_per_s
 *       and p50_us/p99_us for one broadcast to reach everyone.
 *
 * Every result is one line of JSON on stdout; client_cpu is this process's CPU time over
 * the measured wall time (1.0 = one core busy), to show the load generator is not the limit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000
#define OPEN_CONCURRENCY 64 /* handshakes in progress at once while opening many connections */
#define SMALL 32

/* The key of RFC 6455's example and the answer every server must give to it. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

enum { S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_WAIT_EOF, S_IDLE };

typedef struct {
    int fd;
    int state;
    int want_out;
    unsigned char *rbuf;
    size_t rlen, rcap;
    /* The message being received: started, and how many payload bytes matched so far. */
    int msg_active;
    size_t msg_off;
    /* echo: frames queued for writing (all the same frame), offset into the first one. */
    size_t out_frames, out_off;
    size_t in_flight;
    double *sent_at; /* ring of DEPTH send times */
    size_t head, tail;
    size_t echoed, echoed_at_start; /* echo: per-connection counts, to show starvation */
    double started;  /* handshake mode: when this connection began */
    unsigned seq;    /* broadcast: the last broadcast this connection received */
} conn_t;

typedef struct {
    int fin, op;
    const unsigned char *payload;
    size_t len;
} frame_t;

static int port;
static int ep;
static char request[512];
static size_t request_len;
static double *samples;
static size_t nsamples;
static size_t pings_ignored;

static void die_write(conn_t *c, int err);

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(double *p50, double *p99) {
    qsort(samples, nsamples, sizeof(double), cmp_double);
    *p50 = nsamples ? samples[nsamples / 2] * 1e6 : 0;
    *p99 = nsamples ? samples[nsamples * 99 / 100] * 1e6 : 0;
}

static void sample(double value) {
    if (nsamples < MAX_SAMPLES) samples[nsamples++] = value;
}

/* A masked client frame (FIN set) carrying payload. Caller frees. */
static unsigned char *build_frame(int opcode, const unsigned char *payload, size_t size,
                                  size_t *out_len) {
    size_t header = 2 + 4 + (size >= 126 ? (size >= 65536 ? 8 : 2) : 0);
    unsigned char *f = malloc(header + size);
    f[0] = 0x80 | opcode;
    size_t i = 2;
    if (size < 126) {
        f[1] = 0x80 | size;
    } else if (size < 65536) {
        f[1] = 0x80 | 126;
        f[2] = size >> 8;
        f[3] = size & 0xff;
        i = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int b = 0; b < 8; b++) f[2 + b] = (uint64_t)size >> (56 - 8 * b);
        i = 10;
    }
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + i, mask, 4);
    i += 4;
    for (size_t k = 0; k < size; k++) f[i + k] = payload[k] ^ mask[k % 4];
    *out_len = header + size;
    return f;
}

static unsigned char *make_payload(size_t size) {
    unsigned char *p = malloc(size ? size : 1);
    for (size_t k = 0; k < size; k++) p[k] = 'a' + k % 26;
    return p;
}

/* Parse one server frame at buf; 0 if incomplete, else the bytes it takes. */
static size_t parse_frame(const unsigned char *buf, size_t avail, frame_t *f) {
    if (avail < 2) return 0;
    if (buf[1] & 0x80) die("the server sent a masked frame");
    if (buf[0] & 0x70) die("the server sent a frame with RSV bits 0x%02x", buf[0] & 0x70);
    size_t len = buf[1] & 0x7f, hl = 2;
    if (len == 126) {
        if (avail < 4) return 0;
        len = ((size_t)buf[2] << 8) | buf[3];
        hl = 4;
    } else if (len == 127) {
        if (avail < 10) return 0;
        len = 0;
        for (int b = 0; b < 8; b++) len = (len << 8) | buf[2 + b];
        hl = 10;
    }
    if (avail - hl < len) return 0;
    f->fin = (buf[0] & 0x80) != 0;
    f->op = buf[0] & 0x0f;
    f->payload = buf + hl;
    f->len = len;
    return hl + len;
}

/* Check one data frame against the expected message; 1 when the whole message matched. */
static int check_frame(conn_t *c, const frame_t *f, int expect_op, const unsigned char *expect,
                       size_t expect_len) {
    if (f->op == 0) {
        if (!c->msg_active) die("a continuation frame outside a fragmented message");
    } else {
        if (c->msg_active) die("a new message (opcode %d) inside a fragmented one", f->op);
        if (f->op != expect_op) die("got opcode %d, expected %d", f->op, expect_op);
        c->msg_active = 1;
        c->msg_off = 0;
    }
    if (f->len > expect_len - c->msg_off ||
        memcmp(f->payload, expect + c->msg_off, f->len) != 0)
        die("wrong payload: %zu bytes at offset %zu do not match the %zu-byte message sent",
            f->len, c->msg_off, expect_len);
    c->msg_off += f->len;
    if (!f->fin) return 0;
    if (c->msg_off != expect_len)
        die("message too short: %zu bytes, expected %zu", c->msg_off, expect_len);
    c->msg_active = 0;
    return 1;
}

/* Check the HTTP answer in c->rbuf; 0 if incomplete, else its length (dies if refused). */
static size_t check_handshake(conn_t *c) {
    unsigned char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->rlen > 8192) die("handshake response too long");
        return 0;
    }
    size_t hlen = end + 4 - c->rbuf;
    if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.1 101", 12) != 0)
        die("handshake refused: %.*s", (int)hlen, c->rbuf);
    int accepted = 0;
    char *line = memmem(c->rbuf, hlen, "\r\n", 2);
    while (line && (unsigned char *)line < end) {
        line += 2;
        char *eol = memmem(line, (char *)end + 2 - line, "\r\n", 2);
        if (!eol) break;
        static const char name[] = "sec-websocket-accept:";
        if ((size_t)(eol - line) > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
            char *v = line + sizeof name - 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if ((size_t)(ve - v) != strlen(WS_ACCEPT) || memcmp(v, WS_ACCEPT, ve - v) != 0)
                die("wrong Sec-WebSocket-Accept: %.*s", (int)(ve - v), v);
            accepted = 1;
        }
        line = eol;
    }
    if (!accepted) die("no Sec-WebSocket-Accept in: %.*s", (int)hlen, c->rbuf);
    return hlen;
}

static void ep_set(conn_t *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

/* Write a small buffer whole on a non-blocking socket (its send buffer has room). */
static void write_small(conn_t *c, const void *data, size_t len) {
    while (len) {
        ssize_t n = write(c->fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            die_write(c, errno);
        }
        if ((size_t)n != len) die("short write of a small message (%zd of %zu)", n, len);
        len -= n;
    }
}

static void build_request(void) {
    request_len = snprintf(request, sizeof request,
                           "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n",
                           port);
}

static void start_connect(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket: %s (raise ulimit -n?)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    c->rlen = 0;
    c->msg_active = 0;
    int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    struct epoll_event ev = {.data.ptr = c};
    if (r == 0) {
        write_small(c, request, request_len);
        c->state = S_HANDSHAKE;
        ev.events = EPOLLIN;
    } else if (errno == EINPROGRESS) {
        c->state = S_CONNECTING;
        ev.events = EPOLLOUT;
    } else {
        die("connect: %s", strerror(errno));
    }
    c->want_out = 0;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
}

/* EPOLLOUT while connecting: the connection is made (or failed); send the upgrade request. */
static void finish_connect(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) die("connect: %s", strerror(err));
    write_small(c, request, request_len);
    c->state = S_HANDSHAKE;
    ep_set(c, 0);
}

/* Read what is there into c->rbuf; returns bytes read, 0 on EOF, -1 on EAGAIN. */
static ssize_t read_some(conn_t *c, size_t min_free) {
    if (c->rcap - c->rlen < min_free) {
        while (c->rcap - c->rlen < min_free) c->rcap = c->rcap ? c->rcap * 2 : min_free;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (!c->rbuf) die("out of memory");
    }
    for (;;) {
        ssize_t got = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return -1;
            die("read: %s", strerror(errno));
        }
        c->rlen += got;
        return got;
    }
}

static void drop_consumed(conn_t *c, size_t pos) {
    if (pos == 0) return;
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
}

/* A write failed (the server closed or reset the connection): report its Close if it sent one. */
static void die_write(conn_t *c, int err) {
    if (c->state != S_CONNECTING && c->state != S_HANDSHAKE) {
        for (;;) {
            if (c->rcap - c->rlen < 4096) {
                c->rcap = c->rcap * 2 + 4096;
                c->rbuf = realloc(c->rbuf, c->rcap);
            }
            ssize_t got = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
            if (got <= 0) break;
            c->rlen += got;
        }
        size_t pos = 0, used;
        frame_t f;
        while ((used = parse_frame(c->rbuf + pos, c->rlen - pos, &f))) {
            pos += used;
            if (f.op == 8) {
                int code = f.len >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1005;
                int rlen = f.len > 2 ? (int)f.len - 2 : 0;
                die("write: %s; the server had sent Close %d %.*s", strerror(err), code, rlen,
                    f.payload + 2);
            }
        }
    }
    die("write: %s", strerror(err));
}

/* Skip control frames that may come unasked; die on a Close where data was expected. */
static int is_control(const frame_t *f) {
    if (f->op == 9 || f->op == 10) {
        pings_ignored++;
        return 1;
    }
    if (f->op == 8) {
        int code = f->len >= 2 ? (f->payload[0] << 8) | f->payload[1] : 1005;
        int rlen = f->len > 2 ? (int)f->len - 2 : 0;
        die("the server closed the connection: Close %d %.*s", code, rlen, f->payload + 2);
    }
    if (f->op > 2 && f->op != 8) die("reserved opcode %d", f->op);
    return 0;
}

/* Open n connections (at most OPEN_CONCURRENCY handshakes at once); returns seconds taken. */
static double open_all(conn_t *conns, int n) {
    double t0 = now();
    int next = 0, pending = 0, open = 0;
    struct epoll_event events[256];
    while (open < n) {
        while (pending < OPEN_CONCURRENCY && next < n) {
            start_connect(&conns[next++]);
            pending++;
        }
        int k = epoll_wait(ep, events, 256, 1000);
        if (k == 0 && now() - t0 > 120) die("opening connections: only %d of %d after 120 s", open, n);
        for (int i = 0; i < k; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == S_CONNECTING) {
                finish_connect(c);
                continue;
            }
            ssize_t got = read_some(c, 4096);
            if (got == 0) die("connection closed during the handshake (%d open)", open);
            if (got < 0) continue;
            if (c->state == S_HANDSHAKE) {
                size_t hl = check_handshake(c);
                if (!hl) continue;
                drop_consumed(c, hl);
                if (c->rlen) die("unexpected data after the handshake");
                c->state = S_IDLE;
                pending--;
                open++;
            } else {
                die("unexpected data on an idle connection");
            }
        }
    }
    return now() - t0;
}

/* ------------------------------------------------------------------ echo */

static unsigned char *echo_frame, *echo_payload;
static size_t echo_frame_len, echo_size, depth;
static int echo_op = 1;

static void queue_message(conn_t *c) {
    c->sent_at[c->head] = now();
    c->head = (c->head + 1) % depth;
    c->in_flight++;
    c->out_frames++;
}

/* Write queued frames (several per writev); wait for EPOLLOUT when the socket is full. */
static void flush_out(conn_t *c) {
    while (c->out_frames) {
        struct iovec iov[64];
        int n = 0;
        size_t frames = c->out_frames < 64 ? c->out_frames : 64;
        iov[n].iov_base = echo_frame + c->out_off;
        iov[n++].iov_len = echo_frame_len - c->out_off;
        for (size_t k = 1; k < frames; k++) {
            iov[n].iov_base = echo_frame;
            iov[n++].iov_len = echo_frame_len;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (!c->want_out) ep_set(c, 1);
                return;
            }
            die_write(c, errno);
        }
        size_t left = w;
        while (left) {
            size_t rem = echo_frame_len - c->out_off;
            if (left >= rem) {
                left -= rem;
                c->out_off = 0;
                c->out_frames--;
            } else {
                c->out_off += left;
                left = 0;
            }
        }
    }
    if (c->want_out) ep_set(c, 0);
}

static void echo_consume(conn_t *c, int running, size_t *echoed) {
    size_t pos = 0;
    if (c->state == S_HANDSHAKE) {
        size_t hl = check_handshake(c);
        if (!hl) return;
        pos = hl;
        c->state = S_OPEN;
        for (size_t k = 0; k < depth; k++) queue_message(c);
    }
    frame_t f;
    size_t used;
    while ((used = parse_frame(c->rbuf + pos, c->rlen - pos, &f))) {
        pos += used;
        if (is_control(&f)) continue;
        if (check_frame(c, &f, echo_op, echo_payload, echo_size)) {
            if (c->in_flight == 0) die("an echo nobody asked for");
            c->in_flight--;
            double rtt = now() - c->sent_at[c->tail];
            c->tail = (c->tail + 1) % depth;
            if (running) { /* echoes drained after the end are checked, not counted */
                sample(rtt);
                (*echoed)++;
                c->echoed++;
                queue_message(c);
            }
        }
    }
    drop_consumed(c, pos);
    flush_out(c);
}

static int run_echo(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: loadgen PORT CONNECTIONS SIZE DEPTH SECONDS [binary]\n");
        return 2;
    }
    port = atoi(argv[1]);
    build_request();
    int nconn = atoi(argv[2]);
    echo_size = strtoul(argv[3], NULL, 10);
    depth = strtoul(argv[4], NULL, 10);
    double seconds = atof(argv[5]);
    if (argc > 6 && strcmp(argv[6], "binary") == 0) echo_op = 2;
    if (nconn < 1 || depth < 1) die("CONNECTIONS and DEPTH must be at least 1");
    echo_payload = make_payload(echo_size);
    echo_frame = build_frame(echo_op, echo_payload, echo_size, &echo_frame_len);
    conn_t *conns = calloc(nconn, sizeof(conn_t));
    size_t min_free = echo_size + 65536 > 262144 ? 262144 : 65536;
    for (int i = 0; i < nconn; i++) {
        conns[i].sent_at = calloc(depth, sizeof(double));
        start_connect(&conns[i]);
    }
    size_t echoed = 0, echoed_at_start = 0;
    struct epoll_event events[256];
    double start = now(), end = start + seconds, measured_start = start;
    double cpu_start = cpu_now();
    int warm = 0;
    for (;;) {
        double t = now();
        int running = t < end;
        if (!warm && t >= start + 0.5 && seconds > 1.0) { /* drop the first half second */
            warm = 1;
            measured_start = t;
            echoed_at_start = echoed;
            for (int i = 0; i < nconn; i++) conns[i].echoed_at_start = conns[i].echoed;
            nsamples = 0;
            cpu_start = cpu_now();
        }
        if (!running) {
            size_t outstanding = 0;
            for (int i = 0; i < nconn; i++) outstanding += conns[i].in_flight;
            if (outstanding == 0) break;
            if (t > end + 10) die("%zu echoes still missing 10 s after the end", outstanding);
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == S_CONNECTING) {
                finish_connect(c);
                continue;
            }
            if (events[i].events & EPOLLOUT) flush_out(c);
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = read_some(c, min_free);
            if (got == 0) die("connection lost (EOF from the server)");
            if (got < 0) continue;
            echo_consume(c, running, &echoed);
        }
    }
    double elapsed = end - measured_start;
    double cpu = cpu_now() - cpu_start;
    size_t counted = echoed - echoed_at_start;
    double p50, p99;
    percentiles(&p50, &p99);
    size_t per_min = (size_t)-1, per_max = 0;
    for (int i = 0; i < nconn; i++) {
        size_t k = conns[i].echoed - conns[i].echoed_at_start;
        if (k < per_min) per_min = k;
        if (k > per_max) per_max = k;
    }
    printf("{\"mode\": \"echo\", \"connections\": %d, \"size\": %zu, \"depth\": %zu, "
           "\"messages\": %zu, \"messages_per_s\": %.0f, \"mb_per_s\": %.2f, \"p50_us\": %.0f, "
           "\"p99_us\": %.0f, \"per_conn_min\": %zu, \"per_conn_max\": %zu, "
           "\"client_cpu\": %.2f}\n",
           nconn, echo_size, depth, counted, counted / elapsed,
           counted * (double)echo_size / elapsed / 1e6, p50, p99, per_min, per_max, cpu / elapsed);
    for (int i = 0; i < nconn; i++) close(conns[i].fd);
    return 0;
}

/* ------------------------------------------------------------------ handshake */

static unsigned char *small_payload, *small_frame, *close_frame;
static size_t small_frame_len, close_frame_len;

static void build_small_frames(void) {
    small_payload = make_payload(SMALL);
    small_frame = build_frame(1, small_payload, SMALL, &small_frame_len);
    static const unsigned char code[2] = {0x03, 0xe8}; /* 1000 */
    close_frame = build_frame(8, code, 2, &close_frame_len);
}

/* Returns 1 when the connection is finished (server closed TCP after the Close exchange). */
static int handshake_consume(conn_t *c, int eof) {
    size_t pos = 0;
    if (c->state == S_HANDSHAKE) {
        if (eof) die("connection closed during the handshake");
        size_t hl = check_handshake(c);
        if (!hl) return 0;
        pos = hl;
        c->state = S_OPEN;
        write_small(c, small_frame, small_frame_len);
    }
    frame_t f;
    size_t used;
    while ((used = parse_frame(c->rbuf + pos, c->rlen - pos, &f))) {
        pos += used;
        if (c->state == S_OPEN) {
            if (is_control(&f)) continue;
            if (check_frame(c, &f, 1, small_payload, SMALL)) {
                write_small(c, close_frame, close_frame_len);
                c->state = S_CLOSING;
            }
        } else if (c->state == S_CLOSING) {
            if (f.op == 8) {
                c->state = S_WAIT_EOF;
            } else if (f.op != 9 && f.op != 10) {
                die("a data frame after our Close");
            }
        } else {
            die("a frame after the server's Close");
        }
    }
    drop_consumed(c, pos);
    if (eof) {
        if (c->state != S_WAIT_EOF) die("the server closed TCP before the Close exchange ended");
        return 1;
    }
    return 0;
}

static int run_handshake(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: loadgen handshake PORT CONCURRENCY SECONDS\n");
        return 2;
    }
    port = atoi(argv[2]);
    build_request();
    int conc = atoi(argv[3]);
    double seconds = atof(argv[4]);
    build_small_frames();
    conn_t *slots = calloc(conc, sizeof(conn_t));
    double start = now(), end = start + seconds, measured_start = start, cpu_start = cpu_now();
    for (int i = 0; i < conc; i++) {
        slots[i].started = now();
        start_connect(&slots[i]);
    }
    size_t done = 0, done_at_start = 0, active = conc, resets = 0;
    int warm = 0;
    struct epoll_event events[256];
    double last_check = start;
    while (active) {
        double t = now();
        int running = t < end;
        if (!warm && t >= start + 0.5 && seconds > 1.0) {
            warm = 1;
            measured_start = t;
            done_at_start = done;
            nsamples = 0;
            cpu_start = cpu_now();
        }
        if (t - last_check > 0.5) {
            last_check = t;
            for (int i = 0; i < conc; i++)
                if (slots[i].fd >= 0 && t - slots[i].started > 10)
                    die("a connection took over 10 s (state %d)", slots[i].state);
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == S_CONNECTING) {
                finish_connect(c);
                continue;
            }
            int finished;
            ssize_t got;
            if (c->state == S_WAIT_EOF) {
                /* Only the server's FIN (or a reset after it) should come now. */
                got = read(c->fd, c->rbuf, c->rcap ? c->rcap : 0);
                if (got < 0 && errno == ECONNRESET) {
                    resets++;
                    got = 0;
                } else if (got < 0 && errno == EAGAIN) {
                    continue;
                } else if (got < 0) {
                    die("read: %s", strerror(errno));
                } else if (got > 0) {
                    die("data after the server's Close");
                }
                finished = 1;
            } else {
                got = read_some(c, 4096);
                if (got < 0) continue;
                finished = handshake_consume(c, got == 0);
            }
            if (!finished) continue;
            close(c->fd);
            c->fd = -1;
            if (running) {
                done++;
                sample(now() - c->started);
                c->started = now();
                start_connect(c);
            } else {
                active--;
            }
        }
    }
    double elapsed = end - measured_start, cpu = cpu_now() - cpu_start;
    size_t counted = done - done_at_start;
    double p50, p99;
    percentiles(&p50, &p99);
    printf("{\"mode\": \"handshake\", \"concurrency\": %d, \"connections\": %zu, "
           "\"connections_per_s\": %.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, "
           "\"resets_after_close\": %zu, \"client_cpu\": %.2f}\n",
           conc, counted, counted / elapsed, p50, p99, resets, cpu / elapsed);
    return 0;
}

/* ------------------------------------------------------------------ idle */

static int run_idle(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: loadgen idle PORT N\n");
        return 2;
    }
    port = atoi(argv[2]);
    build_request();
    int n = atoi(argv[3]);
    build_small_frames();
    conn_t *conns = calloc(n, sizeof(conn_t));
    double open_seconds = open_all(conns, n);
    printf("{\"event\": \"open\", \"connections\": %d, \"open_seconds\": %.2f}\n", n, open_seconds);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) die("stdin closed before the verify step");
    double t0 = now();
    for (int i = 0; i < n; i++) {
        conns[i].state = S_OPEN;
        write_small(&conns[i], small_frame, small_frame_len);
    }
    int echoed = 0;
    struct epoll_event events[256];
    while (echoed < n) {
        int k = epoll_wait(ep, events, 256, 1000);
        if (now() - t0 > 60) die("only %d of %d idle connections echoed within 60 s", echoed, n);
        for (int i = 0; i < k; i++) {
            conn_t *c = events[i].data.ptr;
            ssize_t got = read_some(c, 4096);
            if (got == 0) die("an idle connection was closed by the server (%d echoed)", echoed);
            if (got < 0) continue;
            size_t pos = 0, used;
            frame_t f;
            while ((used = parse_frame(c->rbuf + pos, c->rlen - pos, &f))) {
                pos += used;
                if (is_control(&f)) continue;
                if (c->state != S_OPEN) die("a second message on an idle connection");
                if (check_frame(c, &f, 1, small_payload, SMALL)) {
                    c->state = S_IDLE;
                    echoed++;
                }
            }
            drop_consumed(c, pos);
        }
    }
    printf("{\"mode\": \"idle\", \"connections\": %d, \"echoed\": %d, \"open_seconds\": %.2f, "
           "\"verify_seconds\": %.3f, \"pings_ignored\": %zu}\n",
           n, echoed, open_seconds, now() - t0, pings_ignored);
    fflush(stdout);
    /* Hold the connections (now used once) until the next line or EOF on stdin. */
    if (!fgets(line, sizeof line, stdin)) line[0] = 0;
    for (int i = 0; i < n; i++) close(conns[i].fd);
    return 0;
}

/* ------------------------------------------------------------------ broadcast */

static int run_broadcast(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: loadgen broadcast PORT N SECONDS [SIZE]\n");
        return 2;
    }
    port = atoi(argv[2]);
    build_request();
    int n = atoi(argv[3]);
    double seconds = atof(argv[4]);
    size_t size = argc > 5 ? strtoul(argv[5], NULL, 10) : 32;
    if (size < 32) size = 32;
    conn_t *conns = calloc(n, sizeof(conn_t));
    double open_seconds = open_all(conns, n);
    unsigned char *msg = malloc(size + 1);
    unsigned seq = 0;
    size_t got_count = 0, broadcasts = 0, broadcasts_at_start = 0;
    double start = now(), end = start + seconds, measured_start = start, cpu_start = cpu_now();
    double sent_at = 0;
    int warm = 0, in_progress = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (!in_progress || got_count == (size_t)n) { /* between broadcasts */
            if (in_progress) {
                sample(t - sent_at);
                broadcasts++;
            }
            if (!warm && t >= start + 0.5 && seconds > 1.0) {
                warm = 1;
                measured_start = t;
                broadcasts_at_start = broadcasts;
                nsamples = 0;
                cpu_start = cpu_now();
            }
            if (t >= end) break;
            seq++;
            int k = snprintf((char *)msg, size + 1, "broadcast:%010u:", seq);
            memset(msg + k, 'x', size - k);
            size_t flen;
            unsigned char *frame = build_frame(1, msg, size, &flen);
            sent_at = now();
            got_count = 0;
            in_progress = 1;
            write_small(&conns[0], frame, flen);
            free(frame);
        }
        if (t - sent_at > 10) die("broadcast %u reached only %zu of %d within 10 s", seq, got_count, n);
        int k = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < k; i++) {
            conn_t *c = events[i].data.ptr;
            ssize_t got = read_some(c, 4096);
            if (got == 0) die("connection lost during broadcast %u", seq);
            if (got < 0) continue;
            size_t pos = 0, used;
            frame_t f;
            while ((used = parse_frame(c->rbuf + pos, c->rlen - pos, &f))) {
                pos += used;
                if (is_control(&f)) continue;
                if (c->seq == seq) die("broadcast %u arrived twice on one connection", seq);
                if (check_frame(c, &f, 1, msg, size)) {
                    c->seq = seq;
                    got_count++;
                }
            }
            drop_consumed(c, pos);
        }
    }
    double elapsed = now() - measured_start, cpu = cpu_now() - cpu_start;
    size_t counted = broadcasts - broadcasts_at_start;
    double p50, p99;
    percentiles(&p50, &p99);
    printf("{\"mode\": \"broadcast\", \"connections\": %d, \"size\": %zu, \"broadcasts\": %zu, "
           "\"deliveries_per_s\": %.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, "
           "\"open_seconds\": %.2f, \"client_cpu\": %.2f}\n",
           n, size, counted, counted * (double)n / elapsed, p50, p99, open_seconds, cpu / elapsed);
    for (int i = 0; i < n; i++) close(conns[i].fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: loadgen [echo] PORT CONNECTIONS SIZE DEPTH SECONDS [binary]\n"
                "       loadgen handshake PORT CONCURRENCY SECONDS\n"
                "       loadgen idle PORT N\n"
                "       loadgen broadcast PORT N SECONDS [SIZE]\n");
        return 2;
    }
    samples = malloc(sizeof(double) * MAX_SAMPLES);
    ep = epoll_create1(0);
    signal(SIGPIPE, SIG_IGN); /* a write to a closed connection fails with EPIPE, reported */
    const char *mode = argv[1];
    if (strcmp(mode, "echo") == 0) { /* "loadgen echo PORT ..." is "loadgen PORT ..." */
        argv++;
        argc--;
    }
    if (strcmp(mode, "handshake") == 0) return run_handshake(argc, argv);
    if (strcmp(mode, "idle") == 0) return run_idle(argc, argv);
    if (strcmp(mode, "broadcast") == 0) return run_broadcast(argc, argv);
    return run_echo(argc, argv);
}
