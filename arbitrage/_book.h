/* Reading BookUpdate events (and structs with the same fields) from C, shared by the compiled
 * modules.
 *
 * Fields are read straight from the struct's slots when the object is exactly the BookUpdate type
 * whose member descriptors were looked up (``book_fields_init``), else through getattr: the slots
 * are what msgspec stores, and a direct read is a load instead of a type-dictionary walk.
 */
#ifndef ARB_BOOK_H
#define ARB_BOOK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h"

typedef struct {
    PyTypeObject *type; /* BookUpdate (borrowed from the caller, who keeps it alive) */
    Py_ssize_t venue, symbol, bids, asks, ts_event, ts_init; /* slot offsets, or -1 */
    PyObject *n_venue, *n_symbol, *n_bids, *n_asks, *n_ts_event, *n_ts_init; /* attribute names */
} BookFields;

static inline Py_ssize_t
book_slot(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);
    if (descr && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX || member->type == T_OBJECT)
            return member->offset;
    }
    return -1;
}

/* Look up the slots of ``type``'s fields (any field without one is read with getattr). */
static inline int
book_fields_init(BookFields *f, PyTypeObject *type)
{
    f->type = type;
    f->venue = book_slot(type, "venue");
    f->symbol = book_slot(type, "symbol");
    f->bids = book_slot(type, "bids");
    f->asks = book_slot(type, "asks");
    f->ts_event = book_slot(type, "ts_event");
    f->ts_init = book_slot(type, "ts_init");
    if (!(f->n_venue = PyUnicode_InternFromString("venue")) || !(f->n_symbol = PyUnicode_InternFromString("symbol"))
        || !(f->n_bids = PyUnicode_InternFromString("bids")) || !(f->n_asks = PyUnicode_InternFromString("asks"))
        || !(f->n_ts_event = PyUnicode_InternFromString("ts_event"))
        || !(f->n_ts_init = PyUnicode_InternFromString("ts_init")))
        return -1;
    return 0;
}

/* ``book_fields_init`` for arbitrage.events.BookUpdate, at module initialisation. The type's
 * reference is kept for the life of the process (``f->type`` stays valid). */
static inline int
book_fields_from_events(BookFields *f)
{
    PyObject *events = PyImport_ImportModule("arbitrage.events");
    if (!events)
        return -1;
    PyObject *type = PyObject_GetAttrString(events, "BookUpdate");
    Py_DECREF(events);
    if (!type)
        return -1;
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "arbitrage.events.BookUpdate is not a type");
        Py_DECREF(type);
        return -1;
    }
    return book_fields_init(f, (PyTypeObject *)type);
}

/* A new reference to a field of ``book`` (NULL with an exception on failure). */
static inline PyObject *
book_get(const BookFields *f, PyObject *book, Py_ssize_t offset, PyObject *name)
{
    if (offset >= 0 && Py_TYPE(book) == f->type) {
        PyObject *value = *(PyObject **)((char *)book + offset);
        if (value) {
            Py_INCREF(value);
            return value;
        }
    }
    return PyObject_GetAttr(book, name);
}

/* Best price of a side (levels best first), 0 when empty: ``levels[0][0] if levels else 0.0``. */
static inline int
top_price(PyObject *levels, double *out)
{
    PyObject *level, *price;
    int empty = PyObject_Not(levels);
    if (empty < 0)
        return -1;
    if (empty) {
        *out = 0.0;
        return 0;
    }
    if (PyTuple_CheckExact(levels)) {
        level = PyTuple_GET_ITEM(levels, 0);
        Py_INCREF(level);
    }
    else if (!(level = PySequence_GetItem(levels, 0)))
        return -1;
    if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) > 0) {
        price = PyTuple_GET_ITEM(level, 0);
        Py_INCREF(price);
    }
    else if (!(price = PySequence_GetItem(level, 0))) {
        Py_DECREF(level);
        return -1;
    }
    *out = PyFloat_AsDouble(price);
    Py_DECREF(price);
    Py_DECREF(level);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* Both best prices of a book, 0 for an empty side. */
static inline int
book_tops(const BookFields *f, PyObject *book, double *bid, double *ask)
{
    PyObject *bids = book_get(f, book, f->bids, f->n_bids);
    if (!bids)
        return -1;
    int err = top_price(bids, bid);
    Py_DECREF(bids);
    if (err < 0)
        return -1;
    PyObject *asks = book_get(f, book, f->asks, f->n_asks);
    if (!asks)
        return -1;
    err = top_price(asks, ask);
    Py_DECREF(asks);
    return err;
}

/* The module ``def`` with its one type, ``type``, added as ``name``. */
static inline PyObject *
module_with_type(PyModuleDef *def, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(def);
    if (!m)
        return NULL;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#endif
