/* Optional C accelerator for geventws (built when a compiler is there; the pure-Python code
 * stays the reference and is used where this module did not build):
 *
 * - apply_mask: the XOR masking of masking.python_apply_mask, 8 bytes at a time;
 * - scan_messages: the common case of WebSocketProtocol.receive, whole single-frame messages,
 *   in one call; anything else is left to the Python parser;
 * - encode_message: frames.python_encode_message, the payload copied once;
 * - send_each: the same bytes to many sockets, one send() each, in one call;
 * - PayloadBuffer: masking.PythonPayloadBuffer, a masked payload received straight into the
 *   bytes object that becomes the message and unmasked there, read by read;
 * - spare stack chunks (see stack_chunks.py): greenlets' freed data stacks kept for the next
 *   greenlet instead of unmapped (no pure-Python counterpart: without it, nothing is kept). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <sys/socket.h>
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* (macOS) CPython ignores SIGPIPE anyway */
#endif
#endif

/* Where the compiler and the C library can pick a function's version at load time (GCC's
 * target_clones, glibc's ifunc), xor_mask gets AVX-512 and AVX2 builds beside the baseline:
 * its loop is vectorised for each, and big payloads are unmasked 2-4 times as wide. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE_VERSIONS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDE_VERSIONS
#endif

/* out = in XOR key, as if in started `offset` bytes into the masked payload. */
WIDE_VERSIONS static void xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n,
                     const unsigned char *key, Py_ssize_t offset) {
    unsigned char rotated[8];
    for (int i = 0; i < 8; i++) rotated[i] = key[(i + offset) & 3];
    uint64_t key64;
    memcpy(&key64, rotated, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, in + i, 8);
        chunk ^= key64;
        memcpy(out + i, &chunk, 8);
    }
    for (; i < n; i++) out[i] = in[i] ^ rotated[i & 7];
}

static PyObject *apply_mask(PyObject *self, PyObject *args) {
    Py_buffer data, mask;
    Py_ssize_t offset = 0;
    if (!PyArg_ParseTuple(args, "y*y*|n", &data, &mask, &offset)) return NULL;
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "a mask is 4 bytes, got %zd", mask.len);
        PyBuffer_Release(&data);
        PyBuffer_Release(&mask);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len, mask.buf,
                 offset);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/* Text payloads up to this size are unmasked on the stack before decoding. */
#define STACK_TEXT 1024

/* The payload of one text frame, unmasked and decoded; NULL with no error set if it is not
 * valid UTF-8 (the Python parser then fails the connection with its own 1007). */
static PyObject *decode_text(const unsigned char *masked, Py_ssize_t length,
                             const unsigned char *key) {
    unsigned char on_stack[STACK_TEXT];
    unsigned char *plain = on_stack;
    if (length > STACK_TEXT) {
        plain = PyMem_Malloc(length);
        if (plain == NULL) return PyErr_NoMemory();
    }
    xor_mask(masked, plain, length, key, 0);
    PyObject *text = PyUnicode_DecodeUTF8((const char *)plain, length, "strict");
    if (plain != on_stack) PyMem_Free(plain);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) PyErr_Clear();
    return text;
}

/* The one-field event type scan_messages makes (protocol.MessageReceived, a slots dataclass
 * with no __post_init__), and where its instances keep that field: an instance is made by
 * filling the slot, as its generated __init__ would, without running Python code. Found on
 * first use; a type whose `data` is not a plain writable slot (or that has a __dict__) is
 * called instead. */
static PyObject *slot_type = NULL;
static Py_ssize_t slot_offset = -1;

static PyObject *new_event(PyObject *type, PyObject *payload) {
    if (type != slot_type) {
        PyObject *descriptor = PyObject_GetAttrString(type, "data");
        if (descriptor == NULL) {
            PyErr_Clear();
        }
        Py_ssize_t offset = -1;
        if (descriptor != NULL && PyType_Check(type) &&
            Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
            if (member->type == T_OBJECT_EX && !(member->flags & READONLY) &&
                ((PyTypeObject *)type)->tp_dictoffset == 0)
                offset = member->offset;
        }
        Py_XDECREF(descriptor);
        Py_INCREF(type);
        Py_XSETREF(slot_type, type);
        slot_offset = offset;
    }
    if (slot_offset < 0) return PyObject_CallOneArg(type, payload);
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *event = tp->tp_alloc(tp, 0);
    if (event == NULL) return NULL;
    Py_INCREF(payload);
    *(PyObject **)((char *)event + slot_offset) = payload;
    return event;
}

/* scan_messages(buffer, position, limit, events, message_type) -> int
 *
 * Takes, from buffer[position:], each frame that is a whole message in the common form:
 * FIN set, no RSV bit, opcode text (1) or binary (2), masked, a payload of at most `limit`
 * bytes that is all in the buffer and, for text, valid UTF-8. For each it appends
 * message_type(payload) to `events`: bytes for binary, str for text, unmasked. It stops at
 * the first frame of any other kind or not yet complete, and returns that frame's position,
 * so the Python parser goes on from there with all its checks and errors. */
static PyObject *scan_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        return PyErr_Format(PyExc_TypeError, "scan_messages() takes 5 arguments, got %zd",
                            nargs);
    }
    PyObject *events = args[3], *message_type = args[4];
    if (!PyList_Check(events)) {
        return PyErr_Format(PyExc_TypeError, "events must be a list, got %.100s",
                            Py_TYPE(events)->tp_name);
    }
    Py_ssize_t position = PyLong_AsSsize_t(args[1]);
    if (position == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *buffer = view.buf;
    Py_ssize_t end = view.len;
    if (position < 0 || position > end) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "position %zd is outside the buffer of %zd bytes",
                            position, end);
    }
    int failed = 0;
    while (end - position >= 6) { /* the smallest masked frame: 2 header + 4 mask bytes */
        unsigned char first = buffer[position], second = buffer[position + 1];
        int opcode = first & 0x0F;
        if ((first & 0xF0) != 0x80 || (opcode != 1 && opcode != 2) || !(second & 0x80)) break;
        uint64_t length = second & 0x7F;
        Py_ssize_t header = 6;
        if (length == 126) {
            header = 8;
            if (end - position < header) break;
            length = ((uint64_t)buffer[position + 2] << 8) | buffer[position + 3];
        } else if (length == 127) {
            header = 14;
            if (end - position < header) break;
            length = 0;
            for (int i = 2; i < 10; i++) length = (length << 8) | buffer[position + i];
        }
        if (length > (uint64_t)limit || (uint64_t)(end - position - header) < length) break;
        const unsigned char *key = buffer + position + header - 4;
        const unsigned char *masked = key + 4;
        PyObject *payload;
        if (opcode == 1) {
            payload = decode_text(masked, (Py_ssize_t)length, key);
            if (payload == NULL) {
                failed = PyErr_Occurred() != NULL;
                break;
            }
        } else {
            payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
            if (payload == NULL) {
                failed = 1;
                break;
            }
            xor_mask(masked, (unsigned char *)PyBytes_AS_STRING(payload), (Py_ssize_t)length,
                     key, 0);
        }
        PyObject *event = new_event(message_type, payload);
        Py_DECREF(payload);
        if (event == NULL || PyList_Append(events, event) < 0) {
            Py_XDECREF(event);
            failed = 1;
            break;
        }
        Py_DECREF(event);
        position += header + (Py_ssize_t)length;
    }
    PyBuffer_Release(&view);
    if (failed) return NULL;
    return PyLong_FromSsize_t(position);
}

/* Write a frame header (no mask) at out; return its size. */
static Py_ssize_t write_header(unsigned char *out, unsigned char first, Py_ssize_t length) {
    out[0] = first;
    if (length <= 125) {
        out[1] = (unsigned char)length;
        return 2;
    }
    if (length <= 0xFFFF) {
        out[1] = 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
    return 10;
}

static Py_ssize_t header_size(Py_ssize_t length) {
    return length <= 125 ? 2 : length <= 0xFFFF ? 4 : 10;
}

/* encode_message(opcode, payload, fragment_size) -> bytes
 *
 * The unmasked frames of one data message: a single frame with FIN when fragment_size is None
 * or the payload fits in it; else frames of fragment_size bytes (the last shorter), the first
 * with `opcode` (which may carry RSV bits), the others continuations, only the last with FIN. */
static PyObject *encode_message(PyObject *self, PyObject *args) {
    int opcode;
    Py_buffer payload;
    PyObject *fragment_arg;
    if (!PyArg_ParseTuple(args, "iy*O", &opcode, &payload, &fragment_arg)) return NULL;
    if (opcode < 0 || opcode > 0x7F) {
        PyBuffer_Release(&payload);
        return PyErr_Format(PyExc_ValueError, "opcode with RSV bits must be 0-0x7f, got %d",
                            opcode);
    }
    Py_ssize_t size = payload.len, fragment = size;
    if (fragment_arg != Py_None) {
        fragment = PyLong_AsSsize_t(fragment_arg);
        if (fragment == -1 && PyErr_Occurred()) {
            PyBuffer_Release(&payload);
            return NULL;
        }
        if (fragment < 1) {
            PyBuffer_Release(&payload);
            return PyErr_Format(PyExc_ValueError, "fragment_size must be at least 1, got %zd",
                                fragment);
        }
    }
    if (size <= fragment) fragment = size > 0 ? size : 1;
    Py_ssize_t full = size / fragment, rest = size % fragment;
    Py_ssize_t frames = full + (rest || !size ? 1 : 0);
    Py_ssize_t total = size + full * header_size(fragment) + (rest || !size ? header_size(rest) : 0);
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        PyBuffer_Release(&payload);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *in = payload.buf;
    Py_ssize_t done = 0;
    for (Py_ssize_t i = 0; i < frames; i++) {
        Py_ssize_t length = size - done < fragment ? size - done : fragment;
        unsigned char first = (unsigned char)(i == 0 ? opcode : 0) | (i == frames - 1 ? 0x80 : 0);
        out += write_header(out, first, length);
        memcpy(out, in + done, length);
        out += length;
        done += length;
    }
    PyBuffer_Release(&payload);
    return result;
}

/* send_each(sockets, data) -> list: send `data` on each of `sockets` (a list of non-blocking
 * sockets, or of their file descriptors) with one send() each, the GIL released once for all.
 * Returns the sockets that did not take all of it, as (index in sockets, bytes sent) or, for a
 * failed send, (index, -errno) (EAGAIN/EWOULDBLOCK counts as 0 bytes sent). */
#ifndef _WIN32
static PyObject *send_each(PyObject *self, PyObject *args) {
    PyObject *fd_list;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &fd_list, &data)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(fd_list);
    int *fds = PyMem_Malloc(sizeof(int) * (count ? count : 1));
    Py_ssize_t *results = PyMem_Malloc(sizeof(Py_ssize_t) * (count ? count : 1));
    PyObject *unfinished = NULL;
    if (fds == NULL || results == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(fd_list, i);
        int fd = PyObject_AsFileDescriptor(item); /* an int, or the result of fileno() */
        if (fd < 0) {
            /* Said again with the offending item: a wrong type, or a closed socket (-1). */
            PyObject *kind = PyExc_ValueError;
            if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_TypeError)) kind = PyExc_TypeError;
            else if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_ValueError)) goto done;
            PyErr_Clear();
            PyErr_Format(kind, "send_each(): not a socket: %R", item);
            goto done;
        }
        fds[i] = fd;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        ssize_t sent;
        do {
            sent = send(fds[i], data.buf, (size_t)data.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) sent = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
        results[i] = sent;
    }
    Py_END_ALLOW_THREADS
    unfinished = PyList_New(0);
    if (unfinished == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (results[i] == data.len) continue;
        PyObject *item = Py_BuildValue("(nn)", i, results[i]);
        if (item == NULL || PyList_Append(unfinished, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(unfinished);
            goto done;
        }
        Py_DECREF(item);
    }
done:
    PyMem_Free(fds);
    PyMem_Free(results);
    PyBuffer_Release(&data);
    return unfinished;
}
#endif

/* Spent payloads kept for reuse. Every bytes object a PayloadBuffer hands out with take() is
 * also held here; once the application has let go of it (this holds the only reference, so no
 * code can see it any more), the next payload of the same size is received into it instead of
 * into new memory. With glibc's defaults, the memory of a freed big message often goes back to
 * the kernel (the top of the heap is trimmed) and the next one is faulted in page by page,
 * cold; see benchmarks/README.md ("Fifth pass"). At most SPARE_COUNT objects and SPARE_BYTES
 * bytes are held, the oldest let go first; release_spare_payloads() lets go of all. Only in
 * the main interpreter; off where a reference count of 1 does not prove that nobody else holds
 * an object (free-threaded builds) and where resetting a bytes object's cached hash is not
 * known to work (Python 3.14 on, not checked yet). */
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030E0000
#define SPARE_PAYLOADS 1
#define SPARE_COUNT 16
#define SPARE_BYTES ((Py_ssize_t)16 << 20)
static PyObject *spares[SPARE_COUNT];
static int spare_count;
static Py_ssize_t spare_bytes;

static void drop_spare(int index) {
    PyObject *spare = spares[index];
    spare_bytes -= PyBytes_GET_SIZE(spare);
    memmove(&spares[index], &spares[index + 1], sizeof(PyObject *) * (spare_count - index - 1));
    spare_count--;
    Py_DECREF(spare);
}

/* Spares are kept and reused in the main interpreter only: objects must not cross into
 * another interpreter (whose allocator may differ). */
static int in_main_interpreter(void) {
    return PyInterpreterState_Get() == PyInterpreterState_Main();
}

/* At Py_Finalize the spares go with everything else; forget them (an embedding application
 * may start Python again in this process, with this module's static state still here). */
static void forget_spares(void) {
    spare_count = 0;
    spare_bytes = 0;
}

/* A spare payload of exactly `length` bytes nobody else holds (a new reference), or NULL. */
static PyObject *reuse_spare(Py_ssize_t length) {
    if (!in_main_interpreter()) return NULL;
    for (int i = 0; i < spare_count; i++) {
        PyObject *spare = spares[i];
        if (PyBytes_GET_SIZE(spare) != length || Py_REFCNT(spare) != 1) continue;
        Py_INCREF(spare);
        drop_spare(i);
        /* Its content is about to change: forget the hash computed for the old one. */
        _Py_COMP_DIAG_PUSH
        _Py_COMP_DIAG_IGNORE_DEPR_DECLS
        ((PyBytesObject *)spare)->ob_shash = -1;
        _Py_COMP_DIAG_POP
        return spare;
    }
    return NULL;
}

static void keep_spare(PyObject *payload) {
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    if (size > SPARE_BYTES || !in_main_interpreter()) return;
    while (spare_count == SPARE_COUNT || spare_bytes + size > SPARE_BYTES) drop_spare(0);
    Py_INCREF(payload);
    spares[spare_count++] = payload;
    spare_bytes += size;
}
#endif

/* Spare stack chunks. Every greenlet has a data stack of its own for its Python frames (Python
 * 3.11 on): a 16 KiB chunk taken from the interpreter's arena allocator when the greenlet first
 * runs Python code and given back when it ends. The default allocator maps a fresh chunk and
 * unmaps it each time: two system calls and the page faults of touching it again, for every
 * connection, since gevent's servers run each connection in a new greenlet (8 % of the
 * server's samples in the handshakes benchmark, which runs a quarter faster without them; see
 * benchmarks/README.md, "Sixth pass"). This layer over the arena allocator keeps up to
 * CHUNKS_KEPT freed chunks of exactly that size and hands them out again; every other request
 * goes to the allocator below, unchanged. Nothing in Python expects a data stack chunk to be
 * zeroed. The allocator is process-wide and may be called without the GIL (a thread state
 * deleted from another thread), hence the lock. Put in place by keep_stack_chunks() in the
 * main interpreter (geventws/stack_chunks.py calls it on import); not on free-threaded builds
 * nor on Python >= 3.14 (not checked there yet). */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED) \
    && defined(__GNUC__)
#define SPARE_CHUNKS 1
#include <pthread.h>
#define CHUNK_SIZE ((size_t)16 * 1024)
#define CHUNKS_KEPT 64
static PyObjectArenaAllocator arena_below;
static void *spare_chunk_list[CHUNKS_KEPT];
static int spare_chunk_count;
static char chunk_lock;

static void lock_chunks(void) {
    while (__atomic_test_and_set(&chunk_lock, __ATOMIC_ACQUIRE)) {
    }
}

static void unlock_chunks(void) { __atomic_clear(&chunk_lock, __ATOMIC_RELEASE); }

/* In a child of fork() only the forking thread lives on: a lock another thread held at that
 * moment would never be let go. (A chunk being moved then is at worst forgotten.) */
static void unlock_chunks_in_child(void) { __atomic_clear(&chunk_lock, __ATOMIC_RELAXED); }

static void *arena_alloc(void *ctx, size_t size) {
    if (size == CHUNK_SIZE) {
        void *chunk = NULL;
        lock_chunks();
        if (spare_chunk_count) chunk = spare_chunk_list[--spare_chunk_count];
        unlock_chunks();
        if (chunk != NULL) return chunk;
    }
    return arena_below.alloc(arena_below.ctx, size);
}

static void arena_free(void *ctx, void *ptr, size_t size) {
    if (size == CHUNK_SIZE && ptr != NULL) {
        int kept = 0;
        lock_chunks();
        if (spare_chunk_count < CHUNKS_KEPT) {
            spare_chunk_list[spare_chunk_count++] = ptr;
            kept = 1;
        }
        unlock_chunks();
        if (kept) return;
    }
    arena_below.free(arena_below.ctx, ptr, size);
}

/* Whether the layer is in place now. */
static int chunk_cache_installed(void) {
    PyObjectArenaAllocator current;
    PyObject_GetArenaAllocator(&current);
    return current.alloc == arena_alloc;
}
#endif

static PyObject *keep_stack_chunks(PyObject *self, PyObject *unused) {
#ifdef SPARE_CHUNKS
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) Py_RETURN_FALSE;
    if (!chunk_cache_installed()) {
        static int fork_handler_registered;
        PyObjectArenaAllocator ours = {NULL, arena_alloc, arena_free};
        if (!fork_handler_registered) {
            if (pthread_atfork(NULL, NULL, unlock_chunks_in_child) != 0) Py_RETURN_FALSE;
            fork_handler_registered = 1;
        }
        PyObject_GetArenaAllocator(&arena_below);
        PyObject_SetArenaAllocator(&ours);
    }
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *spare_stack_chunks(PyObject *self, PyObject *unused) {
#ifdef SPARE_CHUNKS
    int count;
    if (!chunk_cache_installed()) return PyLong_FromLong(-1);
    lock_chunks();
    count = spare_chunk_count;
    unlock_chunks();
    return PyLong_FromLong(count);
#else
    return PyLong_FromLong(-1);
#endif
}

static PyObject *release_spare_stack_chunks(PyObject *self, PyObject *unused) {
#ifdef SPARE_CHUNKS
    if (!chunk_cache_installed()) Py_RETURN_NONE;
    for (;;) {
        void *chunk = NULL;
        lock_chunks();
        if (spare_chunk_count) chunk = spare_chunk_list[--spare_chunk_count];
        unlock_chunks();
        if (chunk == NULL) break;
        arena_below.free(arena_below.ctx, chunk, CHUNK_SIZE);
    }
#endif
    Py_RETURN_NONE;
}

static PyObject *release_spare_payloads(PyObject *self, PyObject *unused) {
#ifdef SPARE_PAYLOADS
    if (in_main_interpreter())
        while (spare_count) drop_spare(spare_count - 1);
#endif
    Py_RETURN_NONE;
}

static PyObject *spare_payloads(PyObject *self, PyObject *unused) {
#ifdef SPARE_PAYLOADS
    if (!in_main_interpreter()) return PyList_New(0);
    PyObject *list = PyList_New(spare_count);
    if (list == NULL) return NULL;
    for (int i = 0; i < spare_count; i++) {
        Py_INCREF(spares[i]);
        PyList_SET_ITEM(list, i, spares[i]);
    }
    return list;
#else
    return PyList_New(0);
#endif
}

/* PayloadBuffer(length, mask): a masked payload of `length` bytes received into the bytes
 * object that will hold the message. Its buffer (writable) is the part not yet filled, so a
 * socket's recv_into() can write there; advance(n) unmasks the n bytes just written, in place
 * while they are still in the cache; write(data) copies and unmasks in one pass; take() gives
 * the finished bytes away. The bytes object is seen by no one before take(). */
typedef struct {
    PyObject_HEAD
    PyObject *payload; /* bytes of `length`, NULL once taken */
    Py_ssize_t length;
    Py_ssize_t filled;
    Py_ssize_t exports;
    unsigned char mask[4];
} PayloadBuffer;

static int payload_buffer_init(PayloadBuffer *self, PyObject *args, PyObject *kwargs) {
    Py_ssize_t length;
    Py_buffer mask;
    static char *keywords[] = {"length", "mask", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ny*", keywords, &length, &mask)) return -1;
    if (mask.len != 4 || length < 0) {
        PyErr_Format(PyExc_ValueError,
                     "a 4-byte mask and a length of at least 0 are needed, got %zd and %zd",
                     mask.len, length);
        PyBuffer_Release(&mask);
        return -1;
    }
    if (self->payload != NULL || self->exports) {
        PyBuffer_Release(&mask);
        PyErr_SetString(PyExc_RuntimeError, "a PayloadBuffer is set up only once");
        return -1;
    }
    memcpy(self->mask, mask.buf, 4);
    PyBuffer_Release(&mask);
#ifdef SPARE_PAYLOADS
    self->payload = reuse_spare(length);
    if (self->payload == NULL)
#endif
        self->payload = PyBytes_FromStringAndSize(NULL, length);
    if (self->payload == NULL) return -1;
    self->length = length;
    self->filled = 0;
    return 0;
}

static void payload_buffer_dealloc(PayloadBuffer *self) {
    Py_XDECREF(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int payload_buffer_check(PayloadBuffer *self) {
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken already");
        return -1;
    }
    return 0;
}

static int payload_buffer_getbuffer(PayloadBuffer *self, Py_buffer *view, int flags) {
    if (payload_buffer_check(self) < 0) {
        view->obj = NULL;
        return -1;
    }
    char *start = PyBytes_AS_STRING(self->payload) + self->filled;
    if (PyBuffer_FillInfo(view, (PyObject *)self, start, self->length - self->filled, 0, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void payload_buffer_releasebuffer(PayloadBuffer *self, Py_buffer *view) {
    self->exports--;
}

static PyBufferProcs payload_buffer_as_buffer = {
    (getbufferproc)payload_buffer_getbuffer,
    (releasebufferproc)payload_buffer_releasebuffer,
};

static PyObject *payload_buffer_advance(PayloadBuffer *self, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (payload_buffer_check(self) < 0) return NULL;
    if (n < 0 || n > self->length - self->filled) {
        return PyErr_Format(PyExc_ValueError, "advance(%zd): %zd bytes are still to come", n,
                            self->length - self->filled);
    }
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled;
    xor_mask(at, at, n, self->mask, self->filled);
    self->filled += n;
    return PyLong_FromSsize_t(self->length - self->filled);
}

static PyObject *payload_buffer_write(PayloadBuffer *self, PyObject *arg) {
    Py_buffer data;
    if (payload_buffer_check(self) < 0) return NULL;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t n = data.len < self->length - self->filled ? data.len : self->length - self->filled;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled;
    xor_mask(data.buf, at, n, self->mask, self->filled);
    self->filled += n;
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(n);
}

static PyObject *payload_buffer_take(PayloadBuffer *self, PyObject *unused) {
    if (payload_buffer_check(self) < 0) return NULL;
    if (self->filled < self->length) {
        return PyErr_Format(PyExc_ValueError, "take(): %zd of %zd bytes have come", self->filled,
                            self->length);
    }
    if (self->exports) {
        PyErr_SetString(PyExc_BufferError, "take(): a view of the buffer is still open");
        return NULL;
    }
    PyObject *payload = self->payload;
    self->payload = NULL;
#ifdef SPARE_PAYLOADS
    keep_spare(payload);
#endif
    return payload;
}

static PyObject *payload_buffer_view(PayloadBuffer *self, PyObject *unused) {
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *payload_buffer_remaining(PayloadBuffer *self, void *closure) {
    return PyLong_FromSsize_t(self->payload == NULL ? 0 : self->length - self->filled);
}

static PyMethodDef payload_buffer_methods[] = {
    {"advance", (PyCFunction)payload_buffer_advance, METH_O,
     "advance(n) -> int: unmask the next n bytes, just written through the buffer; return "
     "how many are still to come."},
    {"write", (PyCFunction)payload_buffer_write, METH_O,
     "write(data) -> int: copy and unmask as much of data as the payload still needs; return "
     "how many bytes were taken."},
    {"view", (PyCFunction)payload_buffer_view, METH_NOARGS,
     "view() -> memoryview: the part not yet filled, writable (release it before take())."},
    {"take", (PyCFunction)payload_buffer_take, METH_NOARGS,
     "take() -> bytes: the whole unmasked payload (once, when complete and no view is open)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_buffer_getset[] = {
    {"remaining", (getter)payload_buffer_remaining, NULL, "bytes still to come", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PayloadBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "geventws._speedups.PayloadBuffer",
    .tp_basicsize = sizeof(PayloadBuffer),
    .tp_dealloc = (destructor)payload_buffer_dealloc,
    .tp_as_buffer = &payload_buffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PayloadBuffer(length, mask): a masked payload received into its message, read "
              "by read (see masking.PythonPayloadBuffer, the reference).",
    .tp_methods = payload_buffer_methods,
    .tp_getset = payload_buffer_getset,
    .tp_init = (initproc)payload_buffer_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS,
     "apply_mask(data, mask, offset=0) -> bytes: data XORed with the 4-byte mask, as if it "
     "started offset bytes into the masked payload."},
    {"scan_messages", (PyCFunction)(void (*)(void))scan_messages, METH_FASTCALL,
     "scan_messages(buffer, position, limit, events, message_type) -> int: append "
     "message_type(payload) to events for each whole, masked, single-frame text or binary "
     "message (at most limit bytes, text valid UTF-8) from buffer[position:]; return the "
     "position of the first frame not taken."},
#ifndef _WIN32
    {"send_each", send_each, METH_VARARGS,
     "send_each(fds, data) -> list: send data on each non-blocking socket of fds with one "
     "send() each; return (index, bytes sent or -errno) for those that did not take it all."},
#endif
    {"release_spare_payloads", release_spare_payloads, METH_NOARGS,
     "release_spare_payloads() -> None: let go of the spent payloads kept for reuse."},
    {"spare_payloads", spare_payloads, METH_NOARGS,
     "spare_payloads() -> list: the spent payloads kept for reuse, oldest first (empty where "
     "payloads are not reused)."},
    {"keep_stack_chunks", keep_stack_chunks, METH_NOARGS,
     "keep_stack_chunks() -> bool: keep greenlets' freed data stack chunks for reuse from now on "
     "(main interpreter, Python 3.11-3.13 with the GIL); whether they are kept."},
    {"spare_stack_chunks", spare_stack_chunks, METH_NOARGS,
     "spare_stack_chunks() -> int: the greenlets' freed data stack chunks kept for reuse (-1 "
     "where they are not kept)."},
    {"release_spare_stack_chunks", release_spare_stack_chunks, METH_NOARGS,
     "release_spare_stack_chunks() -> None: give the kept stack chunks back to the system."},
    {"encode_message", encode_message, METH_VARARGS,
     "encode_message(opcode, payload, fragment_size) -> bytes: the unmasked frames of one data "
     "message, split at fragment_size bytes unless it is None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "geventws._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
#ifdef SPARE_PAYLOADS
    static int forgetting_registered;
    if (!forgetting_registered && Py_AtExit(forget_spares) == 0) forgetting_registered = 1;
#endif
    if (PyType_Ready(&PayloadBufferType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&PayloadBufferType);
    if (PyModule_AddObject(m, "PayloadBuffer", (PyObject *)&PayloadBufferType) < 0) {
        Py_DECREF(&PayloadBufferType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
