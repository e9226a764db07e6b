/* The compiled CycleCheck: the per-update hot path of the triangular detector.
 *
 * Same behaviour and API as the reference implementation in cycle_check.py (read its docstrings
 * first; tests run both on the same streams). It exists because the Python version spends most of
 * an update on cache misses: every rate, ceiling and bound is a separate float object. Here the
 * six numbers of a market sit in 48 contiguous bytes and the cycles through each edge in one
 * int32 array, so an update touches a handful of cache lines.
 *
 * Per market m: st[6m + d] is the rate of edge 2m + d (d = 0 sell, 1 buy), st[6m + 2 + d] its
 * ceiling, st[6m + 4 + d] its bound.
 */
#include <math.h>
#include <stdint.h>
#include "_book.h"

#define RATE(st, e) ((st)[6 * ((e) >> 1) + ((e) & 1)])
#define CEIL(st, e) ((st)[6 * ((e) >> 1) + 2 + ((e) & 1)])
#define BOUND(st, e) ((st)[6 * ((e) >> 1) + 4 + ((e) & 1)])

static BookFields fields;

typedef struct {
    PyObject_HEAD
    PyObject *market_ids; /* dict: symbol -> market id */
    PyObject *books;      /* list: latest book per market id (shared with the detector) */
    PyObject *retired;    /* the book the last update replaced, or NULL */
    Py_ssize_t n;         /* markets */
    double *st;           /* 6 doubles per market, see above */
    double *sell_mult, *buy_mult;
    int32_t *off3, *cyc3, *off4, *cyc4; /* per edge: cycles through it, flat (CSR) */
    int four;
    double eps, staleness, slack, slack2;
    Py_ssize_t scans, skipped_crossed, skipped_stale;
} CycleCheck;

/* Flatten per-market (sell tuple, buy tuple) pairs into CSR arrays indexed by edge id. */
static int
build_csr(PyObject *through, Py_ssize_t n, int32_t **off_out, int32_t **cyc_out)
{
    PyObject *seq = PySequence_Fast(through, "through3/through4 must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_SetString(PyExc_ValueError, "through3/through4 must have one entry per market");
        Py_DECREF(seq);
        return -1;
    }
    int32_t *off = PyMem_Calloc((size_t)(2 * n + 1), sizeof(int32_t));
    Py_ssize_t total = 0;
    int32_t *cyc = NULL;
    if (!off)
        goto nomem;
    /* two passes: sizes, then values */
    for (int pass = 0; pass < 2; pass++) {
        Py_ssize_t pos = 0;
        for (Py_ssize_t m = 0; m < n; m++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(seq, m);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "each through entry must be a (sells, buys) tuple");
                goto fail;
            }
            for (int d = 0; d < 2; d++) {
                PyObject *flat = PyTuple_GET_ITEM(pair, d);
                if (!PyTuple_Check(flat)) {
                    PyErr_SetString(PyExc_TypeError, "cycles must be flat tuples of ints");
                    goto fail;
                }
                Py_ssize_t k = PyTuple_GET_SIZE(flat);
                if (pass == 0) {
                    total += k;
                    continue;
                }
                off[2 * m + d] = (int32_t)pos;
                for (Py_ssize_t i = 0; i < k; i++) {
                    long v = PyLong_AsLong(PyTuple_GET_ITEM(flat, i));
                    if (v == -1 && PyErr_Occurred())
                        goto fail;
                    if (v < 0 || v > INT32_MAX) {
                        PyErr_SetString(PyExc_ValueError, "edge or cycle id out of range");
                        goto fail;
                    }
                    cyc[pos++] = (int32_t)v;
                }
            }
        }
        if (pass == 0) {
            if (total > INT32_MAX) {
                PyErr_SetString(PyExc_ValueError, "too many cycles");
                goto fail;
            }
            cyc = PyMem_Malloc((size_t)(total ? total : 1) * sizeof(int32_t));
            if (!cyc)
                goto nomem;
        }
        else {
            off[2 * n] = (int32_t)pos;
        }
    }
    Py_DECREF(seq);
    *off_out = off;
    *cyc_out = cyc;
    return 0;
nomem:
    PyErr_NoMemory();
fail:
    PyMem_Free(off);
    PyMem_Free(cyc);
    Py_DECREF(seq);
    return -1;
}

static int
check_edges(CycleCheck *self, const int32_t *off, const int32_t *cyc, int width)
{
    /* each edge's flat tuple holds whole cycles, and every edge id in them names a market (cycle
     * ids are free): scan and reset_bounds walk each edge's own slice */
    for (Py_ssize_t e = 0; e < 2 * self->n; e++) {
        if ((off[e + 1] - off[e]) % width) {
            PyErr_SetString(PyExc_ValueError, "flat cycle tuples have the wrong length");
            return -1;
        }
        for (int32_t i = off[e]; i < off[e + 1]; i += width)
            for (int j = 0; j < width - 1; j++)
                if (cyc[i + j] >= 2 * self->n) {
                    PyErr_SetString(PyExc_ValueError, "edge id out of range");
                    return -1;
                }
    }
    return 0;
}

static int
read_factors(PyObject *obj, Py_ssize_t n, double **out)
{
    PyObject *seq = PySequence_Fast(obj, "rate factors must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_SetString(PyExc_ValueError, "one rate factor per market");
        Py_DECREF(seq);
        return -1;
    }
    double *v = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!v) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        v[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (v[i] == -1.0 && PyErr_Occurred()) {
            PyMem_Free(v);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *out = v;
    return 0;
}

static int
CycleCheck_init(CycleCheck *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"market_ids", "books", "sell_mult", "buy_mult", "through3", "through4",
                             "four", "threshold_eps", "staleness_ns", "slack", NULL};
    PyObject *market_ids, *books, *sell, *buy, *through3, *through4;
    int four;
    double eps, staleness, slack;
    if (self->st) {
        PyErr_SetString(PyExc_RuntimeError, "CycleCheck is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOOpddd", kwlist, &PyDict_Type, &market_ids,
                                     &PyList_Type, &books, &sell, &buy, &through3, &through4, &four,
                                     &eps, &staleness, &slack))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(books);
    if (n > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many markets");
        return -1;
    }
    self->n = n;
    self->four = four;
    self->eps = eps;
    self->staleness = staleness;
    self->slack = slack;
    self->slack2 = slack * slack;
    if (read_factors(sell, n, &self->sell_mult) < 0 || read_factors(buy, n, &self->buy_mult) < 0)
        return -1;
    if (build_csr(through3, n, &self->off3, &self->cyc3) < 0 || check_edges(self, self->off3, self->cyc3, 3) < 0)
        return -1;
    if (build_csr(through4, n, &self->off4, &self->cyc4) < 0 || check_edges(self, self->off4, self->cyc4, 4) < 0)
        return -1;
    self->st = PyMem_Malloc((size_t)(n ? 6 * n : 1) * sizeof(double));
    if (!self->st) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t m = 0; m < n; m++) {
        double *s = self->st + 6 * m;
        s[0] = s[1] = s[2] = s[3] = 0.0;
        s[4] = s[5] = INFINITY;
    }
    Py_INCREF(market_ids);
    self->market_ids = market_ids;
    Py_INCREF(books);
    self->books = books;
    return 0;
}

static int
CycleCheck_traverse(CycleCheck *self, visitproc visit, void *arg)
{
    Py_VISIT(self->market_ids);
    Py_VISIT(self->books);
    Py_VISIT(self->retired);
    return 0;
}

static int
CycleCheck_clear(CycleCheck *self)
{
    Py_CLEAR(self->market_ids);
    Py_CLEAR(self->books);
    Py_CLEAR(self->retired);
    return 0;
}

static void
CycleCheck_dealloc(CycleCheck *self)
{
    PyObject_GC_UnTrack(self);
    CycleCheck_clear(self);
    PyMem_Free(self->st);
    PyMem_Free(self->sell_mult);
    PyMem_Free(self->buy_mult);
    PyMem_Free(self->off3);
    PyMem_Free(self->cyc3);
    PyMem_Free(self->off4);
    PyMem_Free(self->cyc4);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(CycleCheck *self)
{
    if (!self->st) {
        PyErr_SetString(PyExc_RuntimeError, "CycleCheck is not initialised");
        return 0;
    }
    return 1;
}

/* Mark the bounds of the other edges of every cycle through ``edge`` for recomputation. */
static void
reset_bounds(CycleCheck *self, Py_ssize_t edge)
{
    double *st = self->st;
    for (int32_t i = self->off3[edge]; i < self->off3[edge + 1]; i += 3) {
        BOUND(st, self->cyc3[i]) = INFINITY;
        BOUND(st, self->cyc3[i + 1]) = INFINITY;
    }
    if (self->four)
        for (int32_t i = self->off4[edge]; i < self->off4[edge + 1]; i += 4) {
            BOUND(st, self->cyc4[i]) = INFINITY;
            BOUND(st, self->cyc4[i + 1]) = INFINITY;
            BOUND(st, self->cyc4[i + 2]) = INFINITY;
        }
}

/* Store a market's two rates and keep its ceilings (resetting bounds when a rate leaves its band).
 * Returns the market id, -1 for an unknown symbol or a crossed book, -2 on error. */
static Py_ssize_t
set_rates(CycleCheck *self, PyObject *book, double *rs_out, double *rb_out, int swap)
{
    PyObject *symbol = book_get(&fields, book, fields.symbol, fields.n_symbol);
    if (!symbol)
        return -2;
    PyObject *id = PyDict_GetItemWithError(self->market_ids, symbol);
    Py_DECREF(symbol);
    if (!id)
        return PyErr_Occurred() ? -2 : -1;
    Py_ssize_t mid = PyLong_AsSsize_t(id);
    if (mid == -1 && PyErr_Occurred())
        return -2;
    if (mid < 0 || mid >= self->n || mid >= PyList_GET_SIZE(self->books)) {
        PyErr_SetString(PyExc_IndexError, "market id out of range");
        return -2;
    }
    PyObject *old = PyList_GET_ITEM(self->books, mid);
    Py_INCREF(book);
    PyList_SET_ITEM(self->books, mid, book); /* the list's reference to ``old`` is now ours */
    if (swap)
        Py_XSETREF(self->retired, old);
    else
        Py_XDECREF(old);
    double rs, ask;
    if (book_tops(&fields, book, &rs, &ask) < 0)
        return -2;
    double *s = self->st + 6 * mid;
    if (rs >= ask && ask > 0.0) {
        s[0] = s[1] = 0.0;
        self->skipped_crossed++;
        return -1;
    }
    rs *= self->sell_mult[mid];
    double rb = ask > 0.0 ? self->buy_mult[mid] / ask : 0.0;
    s[0] = rs;
    s[1] = rb;
    if (rs > s[2] || rs * self->slack2 < s[2]) {
        reset_bounds(self, 2 * mid);
        s[2] = rs * self->slack;
    }
    if (rb > s[3] || rb * self->slack2 < s[3]) {
        reset_bounds(self, 2 * mid + 1);
        s[3] = rb * self->slack;
    }
    *rs_out = rs;
    *rb_out = rb;
    return mid;
}

/* Append the cycles through ``edge`` (rate ``r``) that pass at top of book; return its new bound. */
static double
scan(CycleCheck *self, Py_ssize_t edge, double r, PyObject *hits, int *failed)
{
    const double *st = self->st;
    double limit = self->eps / r, top = 0.0, high;
    for (int32_t i = self->off3[edge]; i < self->off3[edge + 1]; i += 3) {
        int32_t a = self->cyc3[i], b = self->cyc3[i + 1];
        if (RATE(st, a) * RATE(st, b) > limit) {
            PyObject *cid = PyLong_FromLong(self->cyc3[i + 2]);
            if (!cid || PyList_Append(hits, cid) < 0) {
                Py_XDECREF(cid);
                *failed = 1;
                return INFINITY;
            }
            Py_DECREF(cid);
        }
        high = CEIL(st, a) * CEIL(st, b);
        if (high > top)
            top = high;
    }
    if (self->four)
        for (int32_t i = self->off4[edge]; i < self->off4[edge + 1]; i += 4) {
            int32_t a = self->cyc4[i], b = self->cyc4[i + 1], c = self->cyc4[i + 2];
            if (RATE(st, a) * RATE(st, b) * RATE(st, c) > limit) {
                PyObject *cid = PyLong_FromLong(self->cyc4[i + 3]);
                if (!cid || PyList_Append(hits, cid) < 0) {
                    Py_XDECREF(cid);
                    *failed = 1;
                    return INFINITY;
                }
                Py_DECREF(cid);
            }
            high = CEIL(st, a) * CEIL(st, b) * CEIL(st, c);
            if (high > top)
                top = high;
        }
    return top;
}

static PyObject *
CycleCheck_update(CycleCheck *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "update(book, now_ns) takes 2 arguments");
        return NULL;
    }
    if (!ready(self))
        return NULL;
    double rs, rb;
    Py_ssize_t mid = set_rates(self, args[0], &rs, &rb, 1);
    if (mid == -2)
        return NULL;
    if (mid < 0)
        Py_RETURN_NONE;
    long long now = PyLong_AsLongLong(args[1]);
    if (now == -1 && PyErr_Occurred())
        return NULL;
    PyObject *ts_obj = book_get(&fields, args[0], fields.ts_event, fields.n_ts_event);
    if (!ts_obj)
        return NULL;
    long long ts = PyLong_AsLongLong(ts_obj);
    Py_DECREF(ts_obj);
    if (ts == -1 && PyErr_Occurred())
        return NULL;
    if ((double)(now - ts) > self->staleness) {
        self->skipped_stale++;
        Py_RETURN_NONE;
    }
    double *s = self->st + 6 * mid;
    double eps = self->eps;
    /* rs * inf is nan for an empty side (rs == 0): nan > eps is false, so that side is skipped */
    int sell = rs * s[4] > eps, buy = rb * s[5] > eps;
    if (!sell && !buy)
        Py_RETURN_NONE;
    self->scans++;
    PyObject *hits = PyList_New(0);
    if (!hits)
        return NULL;
    int failed = 0;
    if (sell)
        s[4] = scan(self, 2 * mid, rs, hits, &failed);
    if (!failed && buy)
        s[5] = scan(self, 2 * mid + 1, rb, hits, &failed);
    if (failed) {
        Py_DECREF(hits);
        return NULL;
    }
    if (PyList_GET_SIZE(hits) == 0) {
        Py_DECREF(hits);
        Py_RETURN_NONE;
    }
    return hits;
}

static PyObject *
CycleCheck_store(CycleCheck *self, PyObject *book)
{
    if (!ready(self))
        return NULL;
    double rs, rb;
    Py_ssize_t mid = set_rates(self, book, &rs, &rb, 0);
    return mid == -2 ? NULL : PyLong_FromSsize_t(mid);
}

static PyObject *
CycleCheck_rate(CycleCheck *self, PyObject *arg)
{
    if (!ready(self))
        return NULL;
    Py_ssize_t e = PyLong_AsSsize_t(arg);
    if (e == -1 && PyErr_Occurred())
        return NULL;
    if (e < 0 || e >= 2 * self->n) {
        PyErr_SetString(PyExc_IndexError, "edge id out of range");
        return NULL;
    }
    return PyFloat_FromDouble(RATE(self->st, e));
}

static PyObject *
CycleCheck_rates(CycleCheck *self, PyObject *Py_UNUSED(ignored))
{
    if (!ready(self))
        return NULL;
    PyObject *out = PyList_New(2 * self->n);
    if (!out)
        return NULL;
    for (Py_ssize_t e = 0; e < 2 * self->n; e++) {
        PyObject *v = PyFloat_FromDouble(RATE(self->st, e));
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, e, v);
    }
    return out;
}

static PyObject *
CycleCheck_get_retired(CycleCheck *self, void *Py_UNUSED(closure))
{
    PyObject *r = self->retired ? self->retired : Py_None;
    Py_INCREF(r);
    return r;
}

static int
CycleCheck_set_retired(CycleCheck *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == Py_None)
        value = NULL;
    Py_XINCREF(value);
    Py_XSETREF(self->retired, value);
    return 0;
}

static PyMethodDef CycleCheck_methods[] = {
    {"update", (PyCFunction)(void (*)(void))CycleCheck_update, METH_FASTCALL,
     "update(book, now_ns) -> list of candidate cycle ids, or None"},
    {"store", (PyCFunction)CycleCheck_store, METH_O, "store(book) -> market id, or -1"},
    {"rate", (PyCFunction)CycleCheck_rate, METH_O, "rate(edge) -> top-of-book rate, fee included"},
    {"rates", (PyCFunction)CycleCheck_rates, METH_NOARGS, "rates() -> every edge's rate"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef CycleCheck_members[] = {
    {"scans", T_PYSSIZET, offsetof(CycleCheck, scans), READONLY, "updates that looped over their cycles"},
    {"skipped_crossed", T_PYSSIZET, offsetof(CycleCheck, skipped_crossed), READONLY, "crossed books"},
    {"skipped_stale", T_PYSSIZET, offsetof(CycleCheck, skipped_stale), READONLY, "stale updates"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef CycleCheck_getset[] = {
    {"retired", (getter)CycleCheck_get_retired, (setter)CycleCheck_set_retired,
     "the book the last update replaced (set to None to free it)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CycleCheckType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "arbitrage.strategies._cycle_check.CycleCheck",
    .tp_basicsize = sizeof(CycleCheck),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Per-update top-of-book test of the cycles through a market (see cycle_check.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CycleCheck_init,
    .tp_dealloc = (destructor)CycleCheck_dealloc,
    .tp_traverse = (traverseproc)CycleCheck_traverse,
    .tp_clear = (inquiry)CycleCheck_clear,
    .tp_methods = CycleCheck_methods,
    .tp_members = CycleCheck_members,
    .tp_getset = CycleCheck_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cycle_check", "Compiled CycleCheck (see cycle_check.py).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__cycle_check(void)
{
    if (book_fields_from_events(&fields) < 0)
        return NULL;
    return module_with_type(&module, &CycleCheckType, "CycleCheck");
}
