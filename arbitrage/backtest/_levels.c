/* RawLevels: one side of a recorded book, kept as its JSON text until something reads past the top.
 *
 * A 20-level book side is 40 (price, amount) tuples and 80 floats; building and freeing them is
 * most of the cost of replaying a recording, yet a strategy reads only the best level of almost
 * every book. RawLevels validates the JSON array of [price, amount] pairs when it is made (so a
 * malformed line is still rejected at read time), parses the best level at once, and parses the
 * rest on the first access beyond it (iteration, an index > 0, a slice, comparison, hashing); after
 * that it behaves as the tuple of (price, amount) tuples it stands for.
 *
 * Accepted: JSON numbers of at most 400 characters that are > 0 and whose decimal magnitude is
 * within 1e-300 .. 1e300 (so the parsed float is positive and finite), in pairs, best level first as
 * recorded. Numbers parse with CPython's correctly rounded strtod, the same floats msgspec produces.
 */
#include <string.h>
#include "_levels.h"


/* Exact powers of ten as doubles: a decimal w * 10^e with w < 2^53 and |e| <= 22 converts with one
 * correctly rounded multiplication or division (Clinger's fast path). */
static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The exponent part of a JSON number at p, if any (``e`` or ``E``, a sign, digits): adds it to
 * *exponent; returns the position after it, or NULL when it is malformed. */
static const char *
read_exponent(const char *p, const char *end, long *exponent)
{
    if (p >= end || (*p != 'e' && *p != 'E'))
        return p;
    p++;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    const char *digits = p;
    long value = 0;
    while (p < end && IS_DIGIT(*p)) {
        if (value < 100000)
            value = value * 10 + (*p - '0');
        p++;
    }
    if (p == digits)
        return NULL;
    *exponent += negative ? -value : value;
    return p;
}

#define MAX_NUMBER 400
/* Longest number accepted, in characters: it bounds the digits an exponent is read against, so the
 * magnitude check holds (no market data comes near it). */

typedef struct {
    uint64_t digits; /* significant digits, while there are at most 15 */
    int count;       /* significant digits */
    long e10;        /* value = digits * 10^e10 (when count <= 15) */
} Decimal;

/* Check one JSON number starting at p: positive, with a decimal magnitude within +-300, and read
 * its decimal form into *d. Returns the position after it, or NULL. */
static const char *
check_number(const char *p, const char *end, Decimal *d)
{
    const char *first = p;
    uint64_t w = 0;
    int count = 0;
    long e10 = 0, magnitude = 0; /* magnitude: decimal exponent of the first nonzero digit */
    if (p >= end || !IS_DIGIT(*p))
        return NULL; /* no sign allowed: prices and amounts are positive */
    if (*p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p))
            return NULL; /* JSON forbids leading zeros */
    }
    else {
        while (p < end && IS_DIGIT(*p)) {
            if (count < 16)
                w = w * 10 + (uint64_t)(*p - '0');
            else
                e10++;
            count++;
            p++;
        }
        magnitude = count - 1;
    }
    if (p < end && *p == '.') {
        const char *digits = ++p;
        while (p < end && IS_DIGIT(*p)) {
            if (count || *p != '0') {
                if (!count)
                    magnitude = -(long)(p - digits) - 1;
                if (count < 16) {
                    w = w * 10 + (uint64_t)(*p - '0');
                    e10--;
                }
                count++;
            }
            else {
                e10--;
            }
            p++;
        }
        if (p == digits)
            return NULL;
    }
    if (!count)
        return NULL; /* zero */
    long exponent = 0;
    if (!(p = read_exponent(p, end, &exponent)))
        return NULL;
    magnitude += exponent;
    e10 += exponent;
    if (magnitude < -300 || magnitude > 300 || p - first > MAX_NUMBER)
        return NULL;
    d->digits = w;
    d->count = count;
    d->e10 = e10;
    return p;
}

/* The float of the checked number in [start, stop): the fast path when exact, else CPython's
 * correctly rounded strtod on a NUL-terminated copy (it must not read past the text). */
static int
to_double(const char *start, const char *stop, const Decimal *d, double *out)
{
    if (d->count <= 15 && d->e10 >= -22 && d->e10 <= 22) {
        *out = d->e10 < 0 ? (double)d->digits / POW10[-d->e10] : (double)d->digits * POW10[d->e10];
        return 0;
    }
    char local[64], *copy = local;
    size_t n = (size_t)(stop - start);
    if (n >= sizeof local && !(copy = PyMem_Malloc(n + 1))) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, start, n);
    copy[n] = '\0';
    *out = PyOS_string_to_double(copy, NULL, NULL);
    if (copy != local)
        PyMem_Free(copy);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* Check one JSON number starting at p without reading its value (the levels below the best): the
 * same acceptance as check_number, in a few instructions a character. Returns the position after
 * it, or NULL. */
static const char *
skip_number(const char *p, const char *end)
{
    const char *start = p;
    unsigned nonzero = 0;
    long lead = 0; /* digits before the first nonzero one, point excluded */
    if (p >= end || !IS_DIGIT(*p))
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p))
            return NULL;
    }
    else {
        while (p < end && IS_DIGIT(*p))
            p++;
        nonzero = 1;
    }
    const char *whole = p; /* end of the integer part */
    if (p < end && *p == '.') {
        const char *digits = ++p;
        if (!nonzero) {
            while (p < end && *p == '0')
                p++;
            lead = p - digits;
        }
        while (p < end && IS_DIGIT(*p))
            nonzero |= (unsigned)(*p++ - '0');
        if (p == digits)
            return NULL;
    }
    if (!nonzero)
        return NULL; /* zero */
    long magnitude = *start != '0' ? (whole - start) - 1 : -lead - 1;
    if (!(p = read_exponent(p, end, &magnitude)))
        return NULL;
    return magnitude < -300 || magnitude > 300 || p - start > MAX_NUMBER ? NULL : p;
}

/* Validate ``[[p, a], ...]`` at the start of the text; count the levels, read the best one, and set
 * *stop past the closing bracket (and any whitespace after it). */
int
levels_scan_prefix(const char *p, const char *end, Py_ssize_t *count, double top[2], const char **stop)
{
    Py_ssize_t n = 0;
    Decimal d;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '[')
        return -1;
    p = skip_ws(p, end);
    if (p < end && *p == ']') {
        *stop = skip_ws(p + 1, end);
        *count = 0;
        return 0;
    }
    for (;;) {
        if (p >= end || *p++ != '[')
            return -1;
        for (int k = 0; k < 2; k++) {
            p = skip_ws(p, end);
            if (n == 0) {
                const char *start = p;
                if (!(p = check_number(p, end, &d)))
                    return -1;
                if (to_double(start, p, &d, &top[k]) < 0)
                    return -2;
            }
            else if (!(p = skip_number(p, end)))
                return -1;
            p = skip_ws(p, end);
            if (p >= end || *p++ != (k ? ']' : ','))
                return -1;
        }
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p >= end || *p++ != ']')
            return -1;
        *stop = skip_ws(p, end);
        *count = n;
        return 0;
    }
}

/* ``scan_prefix`` for a text that must hold the array and nothing else. */
int
levels_scan(const char *p, const char *end, Py_ssize_t *count, double top[2])
{
    const char *stop;
    int err = levels_scan_prefix(p, end, count, top, &stop);
    return err < 0 ? err : stop == end ? 0 : -1;
}

PyObject *
levels_make_level(double price, double amount)
{
    PyObject *a = PyFloat_FromDouble(price), *b = PyFloat_FromDouble(amount);
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *level = PyTuple_New(2);
    if (!level) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(level, 0, a);
    PyTuple_SET_ITEM(level, 1, b);
    /* two floats cannot be part of a reference cycle: keep the collector from visiting it (CPython
     * untracks such tuples itself, but only when a collection first meets them) */
    PyObject_GC_UnTrack(level);
    return level;
}

/* Parse the level at p (validated): a new (price, amount) tuple; *next is set past its ']'. */
static PyObject *
parse_level(const char *p, const char *end, const char **next)
{
    double v[2];
    Decimal d;
    for (int k = 0; k < 2; k++) {
        p = skip_ws(p, end);
        const char *start = p;
        p = check_number(p, end, &d);
        if (!p || to_double(start, p, &d, &v[k]) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "malformed book level");
            return NULL;
        }
        p = skip_ws(p, end) + 1; /* the comma, then the closing bracket */
    }
    *next = p;
    return levels_make_level(v[0], v[1]);
}

static PyObject *
materialize(RawLevels *self)
{
    if (self->full)
        return self->full;
    PyObject *out = PyTuple_New(self->count);
    if (!out)
        return NULL;
    const char *p = self->text, *end = p + self->len;
    p = skip_ws(p, end) + 1; /* '[' */
    for (Py_ssize_t i = 0; i < self->count; i++) {
        p = skip_ws(p, end);
        if (*p == ',')
            p = skip_ws(p + 1, end);
        PyObject *level;
        if (i == 0) {
            level = self->top;
            Py_INCREF(level);
            /* skip the first level: up to its closing bracket */
            while (*p != ']')
                p++;
            p++;
        }
        else {
            level = parse_level(p + 1, end, &p);
            if (!level) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(out, i, level);
    }
    PyObject_GC_UnTrack(out); /* holds only untracked level tuples */
    self->full = out;
    return out;
}

static PyObject *
RawLevels_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *data;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "RawLevels takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:RawLevels", &data))
        return NULL;
    RawLevels *self = (RawLevels *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (PyObject_GetBuffer(data, &self->view, PyBUF_SIMPLE) < 0) {
        self->view.obj = NULL;
        Py_DECREF(self);
        return NULL;
    }
    self->text = self->view.buf;
    self->len = self->view.len;
    const char *p = self->text, *end = p + self->len;
    double top[2];
    int err = levels_scan(p, end, &self->count, top);
    if (err < 0) {
        if (err == -1)
            PyErr_SetString(PyExc_ValueError,
                            "book levels must be a JSON array of [price, amount] pairs of positive numbers");
        Py_DECREF(self);
        return NULL;
    }
    if (self->count && !(self->top = levels_make_level(top[0], top[1]))) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
RawLevels_dealloc(RawLevels *self)
{
    Py_XDECREF(self->top);
    Py_XDECREF(self->full);
    if (self->view.obj)
        PyBuffer_Release(&self->view);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
RawLevels_length(RawLevels *self)
{
    return self->count;
}

static PyObject *
RawLevels_item(RawLevels *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->count) {
        PyErr_SetString(PyExc_IndexError, "book level index out of range");
        return NULL;
    }
    if (i == 0) {
        Py_INCREF(self->top);
        return self->top;
    }
    PyObject *full = materialize(self);
    if (!full)
        return NULL;
    PyObject *level = PyTuple_GET_ITEM(full, i);
    Py_INCREF(level);
    return level;
}

static PyObject *
RawLevels_subscript(RawLevels *self, PyObject *key)
{
    if (PyLong_Check(key)) {
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += self->count;
        return RawLevels_item(self, i);
    }
    PyObject *full = materialize(self);
    return full ? PyObject_GetItem(full, key) : NULL;
}

static int
RawLevels_contains(RawLevels *self, PyObject *value)
{
    PyObject *full = materialize(self);
    return full ? PySequence_Contains(full, value) : -1;
}

static PyObject *
RawLevels_iter(RawLevels *self)
{
    PyObject *full = materialize(self);
    return full ? PyObject_GetIter(full) : NULL;
}

static PyObject *
RawLevels_richcompare(RawLevels *self, PyObject *other, int op)
{
    PyObject *full = materialize(self);
    if (!full)
        return NULL;
    if (Py_IS_TYPE(other, &RawLevelsType)) {
        other = materialize((RawLevels *)other);
        if (!other)
            return NULL;
    }
    return PyObject_RichCompare(full, other, op);
}

static Py_hash_t
RawLevels_hash(RawLevels *self)
{
    PyObject *full = materialize(self);
    return full ? PyObject_Hash(full) : -1;
}

static PyObject *
RawLevels_repr(RawLevels *self)
{
    PyObject *full = materialize(self);
    return full ? PyObject_Repr(full) : NULL;
}

static PyObject *
RawLevels_reduce(RawLevels *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *full = materialize(self);
    return full ? Py_BuildValue("(O(O))", (PyObject *)&PyTuple_Type, full) : NULL;
}

static PyMethodDef module_methods[] = {
    {"pack_book", records_pack_book, METH_VARARGS, "pack_book(out, venue_id, symbol_id, book) -> bool"},
    {"pack_chunk", records_pack_chunk, METH_VARARGS, "pack_chunk(out, ids, chunk) -> lines packed, or -1"},
    {"pack_lines", records_pack_lines, METH_VARARGS, "pack_lines(out, ids, items, start, line_type) -> index"},
    {"unpack", records_unpack, METH_VARARGS, "unpack(message, start, names) -> (events, others)"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods RawLevels_as_sequence = {
    .sq_length = (lenfunc)RawLevels_length,
    .sq_item = (ssizeargfunc)RawLevels_item,
    .sq_contains = (objobjproc)RawLevels_contains,
};

static PyMappingMethods RawLevels_as_mapping = {
    .mp_length = (lenfunc)RawLevels_length,
    .mp_subscript = (binaryfunc)RawLevels_subscript,
};

static PyMethodDef RawLevels_methods[] = {
    {"__reduce__", (PyCFunction)RawLevels_reduce, METH_NOARGS, "pickles as the plain tuple"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject RawLevelsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "arbitrage.backtest._levels.RawLevels",
    .tp_basicsize = sizeof(RawLevels),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "One side of a recorded book as JSON text, parsed past the best level on demand.",
    .tp_new = RawLevels_new,
    .tp_dealloc = (destructor)RawLevels_dealloc,
    .tp_as_sequence = &RawLevels_as_sequence,
    .tp_as_mapping = &RawLevels_as_mapping,
    .tp_iter = (getiterfunc)RawLevels_iter,
    .tp_richcompare = (richcmpfunc)RawLevels_richcompare,
    .tp_hash = (hashfunc)RawLevels_hash,
    .tp_repr = (reprfunc)RawLevels_repr,
    .tp_methods = RawLevels_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_levels", "RawLevels: lazily parsed book sides of JSON-lines recordings.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__levels(void)
{
    if (records_init() < 0)
        return NULL;
    return module_with_type(&module, &RawLevelsType, "RawLevels");
}
