/*
 * c_reference: a plain C server for the load generator, to show what this machine allows.
 * Not a WebSocket library and not a peer: one thread, epoll, no checks beyond what the load
 * generator needs, and one send() for every frame it writes (no batching of answers).
 *
 *   c-reference --port PORT
 *
 * It answers every upgrade request with RFC 6455's example Sec-WebSocket-Accept (the load
 * generator always sends the example key), echoes every text and binary message as one
 * unmasked frame, answers a Close with a Close carrying the same code and then closes, and
 * sends a text message starting with "broadcast:" to every open connection, one send() each
 * (the frame built once). Pings are ignored (the load generator sends none). Prints
 * "ready c-reference on PORT".
 *
 * Where a server can do nothing but one send() per frame (echo-small, handshakes, broadcast:
 * one frame per connection in flight), this is about the most any server can reach here;
 * where answers can be batched (echo-pipelined) or big payloads handled in place
 * (echo-large), a server can do better than this.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

typedef struct {
    unsigned char *buf; /* bytes received and not yet used */
    size_t len, cap;
    int upgraded;
    int index; /* position in open_fds, while upgraded */
    size_t need; /* the length of the incomplete frame at the start of buf, if known */
} peer_t;

static peer_t peers[MAX_FD];
static int open_fds[MAX_FD]; /* upgraded connections, in no particular order */
static int open_count;

static const char ANSWER[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static void fail(const char *what) {
    fprintf(stderr, "c-reference: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Write two buffers (a frame's header and its payload; b may be empty) whole on the
 * non-blocking fd, in one send() or sendmsg() when the socket has room, waiting for room
 * when it has none. */
static int send_all(int fd, const unsigned char *a, size_t a_len, const unsigned char *b,
                     size_t b_len) {
    struct iovec iov[2] = {{(void *)a, a_len}, {(void *)b, b_len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    while (iov[0].iov_len + iov[1].iov_len) {
        ssize_t sent = iov[1].iov_len ? sendmsg(fd, &msg, MSG_NOSIGNAL)
                                      : send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -1;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, -1);
            continue;
        }
        for (int i = 0; i < 2; i++) {
            size_t used = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;
            iov[i].iov_base = (unsigned char *)iov[i].iov_base + used;
            iov[i].iov_len -= used;
            sent -= used;
        }
    }
    return 0;
}

/* The header of an unmasked frame (FIN set) of opcode op and length n; returns its length. */
static size_t frame_header(unsigned char *header, int op, size_t n) {
    header[0] = 0x80 | op;
    if (n < 126) {
        header[1] = n;
        return 2;
    }
    if (n < 65536) {
        header[1] = 126;
        header[2] = n >> 8;
        header[3] = n;
        return 4;
    }
    header[1] = 127;
    for (int i = 0; i < 8; i++) header[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    return 10;
}

/* A small frame is copied into one buffer (one plain send()); a big one goes out as header
 * and payload in one sendmsg(), without a copy. */
static int send_frame(int fd, int op, const unsigned char *payload, size_t n) {
    unsigned char frame[10 + 1024];
    size_t header = frame_header(frame, op, n);
    if (n > 1024) return send_all(fd, frame, header, payload, n);
    memcpy(frame + header, payload, n);
    return send_all(fd, frame, header + n, NULL, 0);
}

/* The frame is built once (header and payload together); then one send() per connection. */
static void broadcast(const unsigned char *payload, size_t n) {
    unsigned char frame[10 + 1024];
    if (n > 1024) return; /* the load generator's broadcasts are 32 bytes */
    size_t header = frame_header(frame, 1, n);
    memcpy(frame + header, payload, n);
    for (int i = 0; i < open_count; i++) send_all(open_fds[i], frame, header + n, NULL, 0);
}

static void unmask(unsigned char *payload, size_t n, const unsigned char *mask) {
    uint32_t m32;
    memcpy(&m32, mask, 4);
    uint64_t m64 = (uint64_t)m32 << 32 | m32, word;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&word, payload + i, 8);
        word ^= m64;
        memcpy(payload + i, &word, 8);
    }
    for (; i < n; i++) payload[i] ^= mask[i & 3];
}

static void drop(int fd) {
    peer_t *p = &peers[fd];
    if (p->upgraded) {
        int last = open_fds[--open_count];
        open_fds[p->index] = last;
        peers[last].index = p->index;
    }
    free(p->buf);
    memset(p, 0, sizeof *p);
    close(fd);
}

/* Handle every complete frame in the peer's buffer; returns -1 once the connection is done. */
static int handle_frames(int fd) {
    peer_t *p = &peers[fd];
    size_t pos = 0;
    p->need = 0;
    for (;;) {
        unsigned char *f = p->buf + pos;
        size_t avail = p->len - pos;
        if (avail < 2) break;
        int op = f[0] & 15;
        size_t n = f[1] & 127, header = 2;
        if (n == 126) {
            if (avail < 4) break;
            n = (size_t)f[2] << 8 | f[3];
            header = 4;
        } else if (n == 127) {
            if (avail < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | f[2 + i];
            header = 10;
        }
        if (avail < header + 4 + n) {
            p->need = header + 4 + n; /* room for the whole frame, to receive it in big reads */
            break;
        }
        unsigned char *payload = f + header + 4;
        unmask(payload, n, f + header);
        pos += header + 4 + n;
        if (op == 8) {
            send_frame(fd, 8, payload, n < 2 ? n : 2);
            return -1;
        }
        if (op == 1 && n >= 10 && memcmp(payload, "broadcast:", 10) == 0) {
            broadcast(payload, n);
        } else if ((op == 1 || op == 2) && send_frame(fd, op, payload, n) < 0) {
            return -1;
        }
    }
    if (pos) {
        memmove(p->buf, p->buf + pos, p->len - pos);
        p->len -= pos;
    }
    return 0;
}

static void on_readable(int fd) {
    peer_t *p = &peers[fd];
    if (p->cap - p->len < 65536 || p->cap < p->need) {
        p->cap = (p->cap * 2 > p->need ? p->cap * 2 : p->need) + 65536;
        p->buf = realloc(p->buf, p->cap);
        if (!p->buf) fail("realloc");
    }
    ssize_t got = recv(fd, p->buf + p->len, p->cap - p->len, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (got <= 0) {
        drop(fd);
        return;
    }
    p->len += got;
    if (!p->upgraded) {
        unsigned char *end = memmem(p->buf, p->len, "\r\n\r\n", 4);
        if (!end) return;
        if (send_all(fd, (const unsigned char *)ANSWER, sizeof ANSWER - 1, NULL, 0) < 0) {
            drop(fd);
            return;
        }
        p->upgraded = 1;
        p->index = open_count;
        open_fds[open_count++] = fd;
        size_t used = end + 4 - p->buf;
        memmove(p->buf, p->buf + used, p->len - used);
        p->len -= used;
    }
    if (handle_frames(fd) < 0) drop(fd);
}

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "--port") != 0) {
        fprintf(stderr, "usage: c-reference --port PORT\n");
        return 2;
    }
    int port = atoi(argv[2]), one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (listener < 0) fail("socket");
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) fail("bind");
    if (listen(listener, 4096) < 0) fail("listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) < 0) fail("epoll_ctl");
    printf("ready c-reference on %d\n", port);
    fflush(stdout);
    struct epoll_event events[256];
    for (;;) {
        int k = epoll_wait(ep, events, 256, -1);
        if (k < 0 && errno != EINTR) fail("epoll_wait");
        for (int i = 0; i < k; i++) {
            int fd = events[i].data.fd;
            if (fd != listener) {
                on_readable(fd);
                continue;
            }
            int c;
            while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                if (c >= MAX_FD) {
                    close(c);
                    continue;
                }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) < 0) fail("epoll_ctl");
            }
        }
    }
}
