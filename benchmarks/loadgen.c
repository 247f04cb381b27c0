/*
 * loadgen: a WebSocket echo load generator, much cheaper per message than the servers it
 * measures. One thread, epoll, N connections to 127.0.0.1:PORT; each keeps DEPTH messages of
 * SIZE bytes in flight, sends a new one for every echo it reads, for SECONDS seconds.
 *
 *   loadgen PORT CONNECTIONS SIZE DEPTH SECONDS [binary]
 *
 * Prints one line of JSON: messages echoed, messages/s, MB/s, p50/p99 round-trip (us).
 * Exit status 1 on any protocol surprise (wrong payload, unexpected frame, early close).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

typedef struct {
    int fd;
    int upgraded;
    size_t in_flight;
    unsigned char *rbuf;
    size_t rlen, rcap;
    double *sent_at; /* ring of send times, DEPTH long */
    size_t head, tail;
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned char *frame;
static size_t frame_len;
static size_t payload_size;
static int opcode = 1;
static size_t depth;
static double *samples;
static size_t nsamples;

static void build_frame(void) {
    size_t header = 2 + 4 + (payload_size >= 126 ? (payload_size >= 65536 ? 8 : 2) : 0);
    frame_len = header + payload_size;
    frame = malloc(frame_len);
    frame[0] = 0x80 | opcode;
    size_t i = 2;
    if (payload_size < 126) {
        frame[1] = 0x80 | payload_size;
    } else if (payload_size < 65536) {
        frame[1] = 0x80 | 126;
        frame[2] = payload_size >> 8;
        frame[3] = payload_size & 0xff;
        i = 4;
    } else {
        frame[1] = 0x80 | 127;
        for (int b = 0; b < 8; b++) frame[2 + b] = (uint64_t)payload_size >> (56 - 8 * b);
        i = 10;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + i, mask, 4);
    i += 4;
    for (size_t k = 0; k < payload_size; k++) frame[i + k] = ('a' + k % 26) ^ mask[k % 4];
}

static int write_all(int fd, const unsigned char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue; /* rare: small frames */
            return -1;
        }
        data += n;
        len -= n;
    }
    return 0;
}

static int send_message(conn_t *c) {
    c->sent_at[c->head] = now();
    c->head = (c->head + 1) % depth;
    c->in_flight++;
    return write_all(c->fd, frame, frame_len);
}

static int consume(conn_t *c, int running, size_t *echoed) {
    size_t pos = 0;
    if (!c->upgraded) {
        unsigned char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!end) return 0;
        if (memcmp(c->rbuf, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "handshake refused: %.*s\n", (int)(end - c->rbuf), c->rbuf);
            return -1;
        }
        c->upgraded = 1;
        pos = end + 4 - c->rbuf;
        for (size_t k = 0; k < depth; k++)
            if (send_message(c) < 0) return -1;
    }
    for (;;) {
        if (c->rlen - pos < 2) break;
        unsigned char *p = c->rbuf + pos;
        size_t len = p[1] & 0x7f, hl = 2;
        if (len == 126) {
            if (c->rlen - pos < 4) break;
            len = (p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (c->rlen - pos < 10) break;
            len = 0;
            for (int b = 0; b < 8; b++) len = (len << 8) | p[2 + b];
            hl = 10;
        }
        if (c->rlen - pos < hl + len) break;
        int op = p[0] & 0x0f, fin = p[0] & 0x80;
        if (op == 9 || op == 10) { /* keepalive ping: ignore in benchmarks */
            pos += hl + len;
            continue;
        }
        if (op == 8) {
            fprintf(stderr, "server closed the connection\n");
            return -1;
        }
        /* Fragmented echoes: count the message at its last frame. */
        if (fin) {
            if (c->in_flight == 0) return -1;
            c->in_flight--;
            double rtt = now() - c->sent_at[c->tail];
            c->tail = (c->tail + 1) % depth;
            if (nsamples < MAX_SAMPLES) samples[nsamples++] = rtt;
            (*echoed)++;
            if (running && send_message(c) < 0) return -1;
        }
        pos += hl + len;
    }
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS SIZE DEPTH SECONDS [binary]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int nconn = atoi(argv[2]);
    payload_size = strtoul(argv[3], NULL, 10);
    depth = strtoul(argv[4], NULL, 10);
    double seconds = atof(argv[5]);
    if (argc > 6 && strcmp(argv[6], "binary") == 0) opcode = 2;
    build_frame();
    samples = malloc(sizeof(double) * MAX_SAMPLES);
    int ep = epoll_create1(0);
    conn_t *conns = calloc(nconn, sizeof(conn_t));
    const char *request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    for (int i = 0; i < nconn; i++) {
        conn_t *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            perror("connect");
            return 1;
        }
        c->rcap = 1 << 16;
        if (c->rcap < 4 * (payload_size + 16) * depth) c->rcap = 4 * (payload_size + 16) * depth;
        c->rbuf = malloc(c->rcap);
        c->sent_at = calloc(depth, sizeof(double));
        if (write_all(c->fd, (const unsigned char *)request, strlen(request)) < 0) return 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    size_t echoed = 0;
    struct epoll_event events[256];
    double start = now(), end = start + seconds, measured_start = start;
    size_t echoed_at_start = 0;
    int warm = 0;
    for (;;) {
        double t = now();
        int running = t < end;
        if (!warm && t >= start + 0.5 && seconds > 1.0) { /* drop the first half second */
            warm = 1;
            measured_start = t;
            echoed_at_start = echoed;
            nsamples = 0;
        }
        if (!running) {
            size_t outstanding = 0;
            for (int i = 0; i < nconn; i++) outstanding += conns[i].in_flight;
            if (outstanding == 0 || t > end + 5) break;
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->rcap - c->rlen < 65536) {
                c->rcap *= 2;
                c->rbuf = realloc(c->rbuf, c->rcap);
            }
            ssize_t got = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
            if (got <= 0) {
                fprintf(stderr, "connection lost\n");
                return 1;
            }
            c->rlen += got;
            if (consume(c, running, &echoed) < 0) return 1;
        }
    }
    double elapsed = (end < now() ? end : now()) - measured_start;
    size_t counted = echoed - echoed_at_start;
    qsort(samples, nsamples, sizeof(double), cmp_double);
    double p50 = nsamples ? samples[nsamples / 2] : 0, p99 = nsamples ? samples[nsamples * 99 / 100] : 0;
    printf("{\"connections\": %d, \"size\": %zu, \"depth\": %zu, \"messages\": %zu, "
           "\"messages_per_s\": %.0f, \"mb_per_s\": %.2f, \"p50_us\": %.0f, \"p99_us\": %.0f}\n",
           nconn, payload_size, depth, counted, counted / elapsed,
           counted * (double)payload_size / elapsed / 1e6, p50 * 1e6, p99 * 1e6);
    for (int i = 0; i < nconn; i++) close(conns[i].fd);
    return 0;
}
