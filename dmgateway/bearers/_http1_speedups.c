/* The optional C accelerator of dmgateway.bearers.http1.parse_head.
 *
 * parse_head(head, max_headers, error) -> (method, target, http10, headers, length)
 *
 * Reads the bytes of a request head (request line and header lines, CRLF
 * line ends, without the empty line) exactly as http1._parse_head_pure, the
 * reference, reads them, in one pass over the bytes instead of some forty
 * Python operations: the same request, the same framing, and the same
 * refusals with the same reasons (raised as ``error(reason)``).  This runs
 * before authentication on whatever a peer sends: every index below is
 * bounded by the length of ``head``; nothing is allocated that is not
 * returned or released.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* RFC 9110 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA */
static unsigned char tchar[256];

static void
init_tables(void)
{
    const char *extra = "!#$%&'*+-.^_`|~";
    int c;
    for (c = '0'; c <= '9'; c++) tchar[c] = 1;
    for (c = 'A'; c <= 'Z'; c++) tchar[c] = 1;
    for (c = 'a'; c <= 'z'; c++) tchar[c] = 1;
    for (; *extra; extra++) tchar[(unsigned char)*extra] = 1;
}

static PyObject *
refuse(PyObject *error, const char *reason)
{
    PyErr_SetString(error, reason);
    return NULL;
}

static int
all_tchar(const unsigned char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!tchar[p[i]]) return 0;
    return 1;
}

/* bytes.lower(): ASCII A-Z only */
static PyObject *
lowered(const unsigned char *p, Py_ssize_t n)
{
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) return NULL;
    unsigned char *q = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++)
        q[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (unsigned char)(p[i] + 32) : p[i];
    return out;
}

static int
equals_lower(const unsigned char *p, Py_ssize_t n, const char *lower)
{
    Py_ssize_t m = (Py_ssize_t)strlen(lower);
    if (n != m) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (p[i] >= 'A' && p[i] <= 'Z') ? (unsigned char)(p[i] + 32) : p[i];
        if (c != (unsigned char)lower[i]) return 0;
    }
    return 1;
}

static PyObject *
parse_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_head(head: bytes, max_headers: int, error)");
        return NULL;
    }
    PyObject *error = args[2];
    Py_ssize_t max_headers = PyLong_AsSsize_t(args[1]);
    if (max_headers == -1 && PyErr_Occurred()) return NULL;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);

    /* every CR is the first byte of a CRLF, every LF its second, no NUL */
    Py_ssize_t breaks = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c > '\r') continue;
        if (c == '\r') {
            if (i + 1 < n && s[i + 1] == '\n') {
                breaks++;
                i++;
                continue;
            }
            return refuse(error, "NUL or bare CR/LF");
        }
        if (c == '\n' || c == 0) return refuse(error, "NUL or bare CR/LF");
    }
    if (breaks > max_headers) return refuse(error, "too many headers");

    /* the request line: exactly two spaces, token SP vchar+ SP HTTP/1.[01] */
    const unsigned char *eol = memchr(s, '\r', (size_t)n);
    Py_ssize_t line_end = eol ? (Py_ssize_t)(eol - s) : n;
    Py_ssize_t sp1 = -1, sp2 = -1, spaces = 0;
    for (Py_ssize_t i = 0; i < line_end; i++) {
        if (s[i] == ' ') {
            spaces++;
            if (sp1 < 0) sp1 = i;
            else if (sp2 < 0) sp2 = i;
        }
    }
    if (spaces != 2) return refuse(error, "request line");
    const unsigned char *version = s + sp2 + 1;
    Py_ssize_t version_len = line_end - sp2 - 1;
    int http10;
    if (version_len == 8 && memcmp(version, "HTTP/1.1", 8) == 0) http10 = 0;
    else if (version_len == 8 && memcmp(version, "HTTP/1.0", 8) == 0) http10 = 1;
    else return refuse(error, "request line");
    Py_ssize_t target_len = sp2 - sp1 - 1;
    if (sp1 == 0 || !all_tchar(s, sp1) || target_len == 0) return refuse(error, "request line");
    for (Py_ssize_t i = sp1 + 1; i < sp2; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return refuse(error, "request line");

    PyObject *headers = PyDict_New();
    if (headers == NULL) return NULL;
    PyObject *length = NULL;  /* None for chunked; 0 without framing */
    int framed = 0;
    Py_ssize_t pos = line_end + 2;  /* the start of the next line (past the end without one) */
    while (pos <= n && line_end < n) {
        const unsigned char *line = s + pos;
        const unsigned char *end = memchr(line, '\r', (size_t)(n - pos));
        Py_ssize_t len = end ? (Py_ssize_t)(end - line) : n - pos;
        line_end = pos + len;
        pos = line_end + 2;
        const unsigned char *colon = memchr(line, ':', (size_t)len);
        if (colon == NULL || colon == line || !all_tchar(line, colon - line)) {
            Py_DECREF(headers);
            Py_XDECREF(length);
            return refuse(error, "header line");
        }
        Py_ssize_t name_len = colon - line;
        const unsigned char *v = colon + 1, *v_end = line + len;
        while (v < v_end && (*v == ' ' || *v == '\t')) v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) v_end--;
        Py_ssize_t value_len = v_end - v;
        if (equals_lower(line, name_len, "content-length")) {
            Py_ssize_t k;
            int digits = value_len > 0;
            for (k = 0; k < value_len && digits; k++)
                if (v[k] < '0' || v[k] > '9') digits = 0;
            if (framed || !digits) {
                Py_DECREF(headers);
                Py_XDECREF(length);
                return refuse(error, "Content-Length");
            }
            const unsigned char *d = v;
            while (d < v_end - 1 && *d == '0') d++;  /* (one zero stays: "0") */
            Py_XDECREF(length);
            if (v_end - d <= 18) {
                long long value = 0;
                for (; d < v_end; d++) value = value * 10 + (*d - '0');
                length = PyLong_FromLongLong(value);
            } else {  /* past 18 digits: too large whatever it is */
                length = PyLong_FromUnsignedLongLong(1ULL << 63);
            }
            if (length == NULL) {
                Py_DECREF(headers);
                return NULL;
            }
            framed = 1;
        } else if (equals_lower(line, name_len, "transfer-encoding")) {
            if (equals_lower(v, value_len, "identity")) continue;  /* (not kept) */
            if (framed || !equals_lower(v, value_len, "chunked") || http10) {
                Py_DECREF(headers);
                Py_XDECREF(length);
                return refuse(error, "Transfer-Encoding");
            }
            Py_XDECREF(length);
            Py_INCREF(Py_None);
            length = Py_None;
            framed = 1;
        }
        PyObject *key = lowered(line, name_len);
        PyObject *value = key ? PyBytes_FromStringAndSize((const char *)v, value_len) : NULL;
        if (value == NULL || PyDict_SetItem(headers, key, value) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(headers);
            Py_XDECREF(length);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    if (length == NULL) {
        length = PyLong_FromLong(0);
        if (length == NULL) {
            Py_DECREF(headers);
            return NULL;
        }
    }
    PyObject *method = PyBytes_FromStringAndSize((const char *)s, sp1);
    PyObject *target = method ? PyBytes_FromStringAndSize((const char *)s + sp1 + 1, target_len) : NULL;
    if (target == NULL) {
        Py_XDECREF(method);
        Py_DECREF(headers);
        Py_DECREF(length);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(5, method, target, http10 ? Py_True : Py_False, headers, length);
    Py_DECREF(method);
    Py_DECREF(target);
    Py_DECREF(headers);
    Py_DECREF(length);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_head", (PyCFunction)(void (*)(void))parse_head, METH_FASTCALL,
     "parse_head(head, max_headers, error) -> (method, target, http10, headers, length)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_http1_speedups", "The optional C reader of HTTP/1.x request heads.", -1, methods,
};

PyMODINIT_FUNC
PyInit__http1_speedups(void)
{
    init_tables();
    return PyModule_Create(&module_def);
}
