/* The compiled CrossCheck: the per-book test of the cross-exchange strategy.
 *
 * Same behaviour and API as the reference implementation in cross_check.py (read its docstrings;
 * tests run both on the same streams). It exists because this test runs for every book of every
 * venue and is most of the strategy's cost per book; here a book's fields are read from its slots
 * and the comparison with the other venues runs without the interpreter.
 */
#include <limits.h>
#include "_book.h"

static BookFields fields;

typedef struct {
    PyObject_HEAD
    PyObject *books;     /* dict: symbol -> dict: venue -> latest book (shared with the caller) */
    PyObject *fees;      /* dict: symbol -> dict: venue -> taker fee (float) */
    PyObject *staleness; /* dict: venue -> staleness in ns (int) */
    Py_ssize_t evaluated, skipped_stale, skipped_crossed;
} CrossCheck;

static int
CrossCheck_init(CrossCheck *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"books", NULL};
    PyObject *books;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!", kwlist, &PyDict_Type, &books))
        return -1;
    Py_INCREF(books);
    Py_XSETREF(self->books, books);
    if (!self->fees && !(self->fees = PyDict_New()))
        return -1;
    if (!self->staleness && !(self->staleness = PyDict_New()))
        return -1;
    return 0;
}

static int
CrossCheck_traverse(CrossCheck *self, visitproc visit, void *arg)
{
    Py_VISIT(self->books);
    Py_VISIT(self->fees);
    Py_VISIT(self->staleness);
    return 0;
}

static int
CrossCheck_clear(CrossCheck *self)
{
    Py_CLEAR(self->books);
    Py_CLEAR(self->fees);
    Py_CLEAR(self->staleness);
    return 0;
}

static void
CrossCheck_dealloc(CrossCheck *self)
{
    PyObject_GC_UnTrack(self);
    CrossCheck_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(CrossCheck *self)
{
    if (!self->books || !self->fees || !self->staleness) {
        PyErr_SetString(PyExc_RuntimeError, "CrossCheck is not initialised");
        return 0;
    }
    return 1;
}

static PyObject *
CrossCheck_set_market(CrossCheck *self, PyObject *args)
{
    PyObject *venue, *symbol, *per_venue;
    double fee;
    if (!ready(self) || !PyArg_ParseTuple(args, "UUd:set_market", &venue, &symbol, &fee))
        return NULL;
    if (!(per_venue = PyDict_GetItemWithError(self->fees, symbol))) {
        if (PyErr_Occurred() || !(per_venue = PyDict_New()))
            return NULL;
        int err = PyDict_SetItem(self->fees, symbol, per_venue);
        Py_DECREF(per_venue); /* the dict holds it */
        if (err < 0)
            return NULL;
    }
    PyObject *value = PyFloat_FromDouble(fee);
    if (!value)
        return NULL;
    int err = PyDict_SetItem(per_venue, venue, value);
    Py_DECREF(value);
    if (err < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
CrossCheck_set_staleness(CrossCheck *self, PyObject *args)
{
    PyObject *venue, *ns;
    if (!ready(self) || !PyArg_ParseTuple(args, "UO!:set_staleness", &venue, &PyLong_Type, &ns))
        return NULL;
    if (PyDict_SetItem(self->staleness, venue, ns) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Top of both sides; *has_sides is 0 when a side is empty (``not bids or not asks``). */
static int
tops(PyObject *book, int *has_sides, double *bid, double *ask)
{
    PyObject *bids = book_get(&fields, book, fields.bids, fields.n_bids);
    if (!bids)
        return -1;
    PyObject *asks = book_get(&fields, book, fields.asks, fields.n_asks);
    if (!asks) {
        Py_DECREF(bids);
        return -1;
    }
    int no_bids = PyObject_Not(bids), no_asks = no_bids ? 0 : PyObject_Not(asks);
    int err = no_bids < 0 || no_asks < 0;
    *has_sides = !err && !no_bids && !no_asks;
    if (*has_sides)
        err = top_price(bids, bid) < 0 || top_price(asks, ask) < 0;
    Py_DECREF(bids);
    Py_DECREF(asks);
    return err ? -1 : 0;
}

/* Fresh (by its venue's staleness) and not crossed; counts what it skips. -1 on error. */
static int
usable(CrossCheck *self, PyObject *book, PyObject *venue, long long now, double bid, double ask)
{
    PyObject *ts_obj = book_get(&fields, book, fields.ts_event, fields.n_ts_event);
    if (!ts_obj)
        return -1;
    long long ts = PyLong_AsLongLong(ts_obj);
    Py_DECREF(ts_obj);
    if (ts == -1 && PyErr_Occurred())
        return -1;
    long long limit = 0;
    PyObject *st = PyDict_GetItemWithError(self->staleness, venue);
    if (st) {
        int overflow;
        limit = PyLong_AsLongLongAndOverflow(st, &overflow);
        if (overflow) /* beyond int64: never stale (or always, if negative), as in Python */
            limit = overflow > 0 ? LLONG_MAX : LLONG_MIN;
        else if (limit == -1 && PyErr_Occurred())
            return -1;
    }
    else if (PyErr_Occurred())
        return -1;
    if (now - ts > limit) {
        self->skipped_stale++;
        return 0;
    }
    if (bid >= ask) {
        self->skipped_crossed++;
        return 0;
    }
    return 1;
}

static int
append_pair(PyObject **pairs, PyObject *buy, PyObject *sell)
{
    if (!*pairs && !(*pairs = PyList_New(0)))
        return -1;
    PyObject *pair = PyTuple_Pack(2, buy, sell);
    if (!pair)
        return -1;
    int err = PyList_Append(*pairs, pair);
    Py_DECREF(pair);
    return err;
}

static PyObject *
CrossCheck_update(CrossCheck *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "update(book, now_ns) takes 2 arguments");
        return NULL;
    }
    if (!ready(self))
        return NULL;
    PyObject *book = args[0], *pairs = NULL, *venues, *fees, *fee_obj;
    int ok = 1;
    long long now = PyLong_AsLongLong(args[1]);
    if (now == -1 && PyErr_Occurred())
        return NULL;
    PyObject *symbol = book_get(&fields, book, fields.symbol, fields.n_symbol);
    if (!symbol)
        return NULL;
    PyObject *venue = book_get(&fields, book, fields.venue, fields.n_venue);
    if (!venue)
        goto fail;
    /* store the book as its venue's latest */
    if (!(venues = PyDict_GetItemWithError(self->books, symbol))) {
        if (PyErr_Occurred() || !(venues = PyDict_New()))
            goto fail;
        int err = PyDict_SetItem(self->books, symbol, venues);
        Py_DECREF(venues); /* the dict holds it */
        if (err < 0)
            goto fail;
    }
    if (PyDict_SetItem(venues, venue, book) < 0)
        goto fail;
    /* this book: a known market, both sides, fresh, not crossed */
    if (!(fees = PyDict_GetItemWithError(self->fees, symbol)) || !(fee_obj = PyDict_GetItemWithError(fees, venue)))
        goto none;
    double fee = PyFloat_AsDouble(fee_obj), bid, ask;
    int has_sides;
    if ((fee == -1.0 && PyErr_Occurred()) || tops(book, &has_sides, &bid, &ask) < 0)
        goto fail;
    if (!has_sides)
        goto none;
    ok = usable(self, book, venue, now, bid, ask);
    if (ok <= 0)
        goto done;
    double cost = ask * (1.0 + fee), gain = bid * (1.0 - fee);
    /* every other venue's book of this symbol, in insertion order */
    Py_ssize_t pos = 0;
    PyObject *other_venue, *other;
    /* the borrowed references stay valid: nothing below runs Python code that could mutate venues */
    Py_INCREF(venues);
    while (PyDict_Next(venues, &pos, &other_venue, &other)) {
        if (other == book)
            continue;
        PyObject *other_fee_obj = PyDict_GetItemWithError(fees, other_venue);
        if (!other_fee_obj) {
            if (PyErr_Occurred())
                goto fail_iter;
            continue;
        }
        double other_fee = PyFloat_AsDouble(other_fee_obj), obid, oask;
        if ((other_fee == -1.0 && PyErr_Occurred()) || tops(other, &has_sides, &obid, &oask) < 0)
            goto fail_iter;
        if (!has_sides)
            continue;
        int buy_here = obid * (1.0 - other_fee) > cost, sell_here = gain > oask * (1.0 + other_fee);
        if (!buy_here && !sell_here)
            continue;
        ok = usable(self, other, other_venue, now, obid, oask);
        if (ok < 0)
            goto fail_iter;
        if (!ok)
            continue;
        self->evaluated++;
        if ((buy_here && append_pair(&pairs, book, other) < 0) || (sell_here && append_pair(&pairs, other, book) < 0))
            goto fail_iter;
    }
    Py_DECREF(venues);
    goto done;
fail_iter:
    Py_DECREF(venues);
fail:
    Py_XDECREF(pairs);
    Py_DECREF(symbol);
    Py_XDECREF(venue);
    return NULL;
none:
    if (PyErr_Occurred())
        goto fail;
done:
    if (ok < 0)
        goto fail;
    Py_DECREF(symbol);
    Py_DECREF(venue);
    if (pairs)
        return pairs;
    Py_RETURN_NONE;
}

static PyMethodDef CrossCheck_methods[] = {
    {"update", (PyCFunction)(void (*)(void))CrossCheck_update, METH_FASTCALL,
     "update(book, now_ns) -> list of (buy book, sell book) that pay at top of book, or None"},
    {"set_market", (PyCFunction)CrossCheck_set_market, METH_VARARGS, "set_market(venue, symbol, fee)"},
    {"set_staleness", (PyCFunction)CrossCheck_set_staleness, METH_VARARGS, "set_staleness(venue, ns)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef CrossCheck_members[] = {
    {"books", T_OBJECT_EX, offsetof(CrossCheck, books), READONLY, "symbol -> venue -> latest book"},
    {"evaluated", T_PYSSIZET, offsetof(CrossCheck, evaluated), READONLY, "other books that paid at the top"},
    {"skipped_stale", T_PYSSIZET, offsetof(CrossCheck, skipped_stale), READONLY, "stale books"},
    {"skipped_crossed", T_PYSSIZET, offsetof(CrossCheck, skipped_crossed), READONLY, "crossed books"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CrossCheckType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "arbitrage.strategies._cross_check.CrossCheck",
    .tp_basicsize = sizeof(CrossCheck),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Per-book top-of-book test against the other venues (see cross_check.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CrossCheck_init,
    .tp_dealloc = (destructor)CrossCheck_dealloc,
    .tp_traverse = (traverseproc)CrossCheck_traverse,
    .tp_clear = (inquiry)CrossCheck_clear,
    .tp_methods = CrossCheck_methods,
    .tp_members = CrossCheck_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cross_check", "Compiled CrossCheck (see cross_check.py).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__cross_check(void)
{
    if (book_fields_from_events(&fields) < 0)
        return NULL;
    return module_with_type(&module, &CrossCheckType, "CrossCheck");
}
