/* Optional C accelerator for geventws (built when a compiler is there; the pure-Python code
 * stays the reference and is used where this module did not build):
 *
 * - apply_mask: the XOR masking of masking.python_apply_mask, 8 bytes at a time;
 * - scan_messages: the common case of WebSocketProtocol.receive, whole single-frame messages,
 *   in one call; anything else is left to the Python parser;
 * - encode_message: frames.python_encode_message, the payload copied once;
 * - unmask_pieces: masking.python_unmask_pieces, joining and unmasking in one pass. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* out = in XOR key, as if in started `offset` bytes into the masked payload. */
static void xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n,
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

/* unmask_pieces(pieces, length, mask) -> bytes
 *
 * The first `length` bytes of the concatenation of `pieces` (a list of bytes-like objects),
 * XORed with the 4-byte mask from its first byte: a payload that arrived in many reads, in
 * one pass instead of a join and then an unmasking. */
static PyObject *unmask_pieces(PyObject *self, PyObject *args) {
    PyObject *pieces;
    Py_ssize_t length;
    Py_buffer mask;
    if (!PyArg_ParseTuple(args, "O!ny*", &PyList_Type, &pieces, &length, &mask)) return NULL;
    if (mask.len != 4 || length < 0) {
        PyBuffer_Release(&mask);
        return PyErr_Format(PyExc_ValueError,
                            "a 4-byte mask and a length of at least 0 are needed, got %zd and %zd",
                            mask.len, length);
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, length);
    if (result == NULL) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_ssize_t done = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pieces) && done < length; i++) {
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        Py_buffer view;
        Py_INCREF(piece);
        int failed = PyObject_GetBuffer(piece, &view, PyBUF_SIMPLE);
        Py_DECREF(piece);
        if (failed < 0) {
            Py_DECREF(result);
            PyBuffer_Release(&mask);
            return NULL;
        }
        Py_ssize_t n = view.len < length - done ? view.len : length - done;
        xor_mask(view.buf, out + done, n, mask.buf, done);
        done += n;
        PyBuffer_Release(&view);
    }
    PyBuffer_Release(&mask);
    if (done < length) {
        Py_DECREF(result);
        return PyErr_Format(PyExc_ValueError, "the pieces hold %zd bytes, %zd are wanted", done,
                            length);
    }
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

static PyMethodDef methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS,
     "apply_mask(data, mask, offset=0) -> bytes: data XORed with the 4-byte mask, as if it "
     "started offset bytes into the masked payload."},
    {"scan_messages", (PyCFunction)(void (*)(void))scan_messages, METH_FASTCALL,
     "scan_messages(buffer, position, limit, events, message_type) -> int: append "
     "message_type(payload) to events for each whole, masked, single-frame text or binary "
     "message (at most limit bytes, text valid UTF-8) from buffer[position:]; return the "
     "position of the first frame not taken."},
    {"unmask_pieces", unmask_pieces, METH_VARARGS,
     "unmask_pieces(pieces, length, mask) -> bytes: the first length bytes of the "
     "concatenated pieces, XORed with the 4-byte mask."},
    {"encode_message", encode_message, METH_VARARGS,
     "encode_message(opcode, payload, fragment_size) -> bytes: the unmasked frames of one data "
     "message, split at fragment_size bytes unless it is None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "geventws._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
