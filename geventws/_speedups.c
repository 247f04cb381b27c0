/* Optional C accelerator for geventws.masking.apply_mask: XOR with a 4-byte key, 8 bytes at a
 * time. The pure-Python path in masking.py stays the reference and is used when this module
 * did not build. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

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
    if (result == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&mask);
        return NULL;
    }
    const unsigned char *in = data.buf;
    const unsigned char *key = mask.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char rotated[8];
    for (int i = 0; i < 8; i++) rotated[i] = key[(i + offset) & 3];
    uint64_t key64;
    memcpy(&key64, rotated, 8);
    Py_ssize_t i = 0, n = data.len;
    Py_BEGIN_ALLOW_THREADS
    for (; i + 8 <= n; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, in + i, 8);
        chunk ^= key64;
        memcpy(out + i, &chunk, 8);
    }
    for (; i < n; i++) out[i] = in[i] ^ rotated[i & 7];
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS,
     "apply_mask(data, mask, offset=0) -> bytes: data XORed with the 4-byte mask, as if it "
     "started offset bytes into the masked payload."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "geventws._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
