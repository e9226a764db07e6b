/* Moving books between the decoding and the replaying process (the ``_levels`` extension's half).
 *
 * A replay may decode its recording in a second process (``_parallel.py``), which sends books to
 * the replaying one as records in a byte message: the fields, each side's level count and best
 * level, and each side's JSON text, already checked. ``unpack`` turns them back into BookUpdate
 * events whose sides are RawLevels over the message, without checking or parsing again.
 */
#include <string.h>
#include "_levels.h"

typedef struct {
    int64_t ts_event, ts_init;
    uint32_t venue, symbol, counts[2], lens[2];
    double tops[4]; /* best bid price, amount, best ask price, amount */
} BookRecord;

static PyObject *s_venue, *s_symbol, *s_bids, *s_asks, *s_ts_event, *s_ts_init;
static PyObject *book_type, *book_kwnames; /* arbitrage.events.BookUpdate and its field names */

static int
append_bytes(PyObject *out, const void *data, Py_ssize_t n)
{
    Py_ssize_t at = PyByteArray_GET_SIZE(out);
    if (PyByteArray_Resize(out, at + n) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(out) + at, data, (size_t)n);
    return 0;
}

/* Append a 'B' record: the header, then the two sides' text (``r->lens`` bytes each). */
static int
append_record(PyObject *out, const BookRecord *r, const char *bids, const char *asks)
{
    return append_bytes(out, "B", 1) < 0 || append_bytes(out, r, sizeof *r) < 0
                   || append_bytes(out, bids, r->lens[0]) < 0 || append_bytes(out, asks, r->lens[1]) < 0
               ? -1
               : 0;
}

static int
get_i64(PyObject *obj, PyObject *name, int64_t *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* pack_book(out: bytearray, venue_id, symbol_id, book) -> bool: append a 'B' record for a book
 * whose sides are both RawLevels; False (nothing appended) for any other book. */
PyObject *
records_pack_book(PyObject *module, PyObject *args)
{
    PyObject *out, *book, *sides[2] = {NULL, NULL}, *result = NULL;
    unsigned int venue, symbol;
    BookRecord r;
    if (!PyArg_ParseTuple(args, "O!IIO:pack_book", &PyByteArray_Type, &out, &venue, &symbol, &book))
        return NULL;
    if (!(sides[0] = PyObject_GetAttr(book, s_bids)) || !(sides[1] = PyObject_GetAttr(book, s_asks)))
        goto done;
    if (!Py_IS_TYPE(sides[0], &RawLevelsType) || !Py_IS_TYPE(sides[1], &RawLevelsType)) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    if (get_i64(book, s_ts_event, &r.ts_event) < 0 || get_i64(book, s_ts_init, &r.ts_init) < 0)
        goto done;
    r.venue = venue;
    r.symbol = symbol;
    for (int k = 0; k < 2; k++) {
        RawLevels *side = (RawLevels *)sides[k];
        if (side->len > UINT32_MAX || side->count > UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "book side too large to send");
            goto done;
        }
        r.counts[k] = (uint32_t)side->count;
        r.lens[k] = (uint32_t)side->len;
        r.tops[2 * k] = side->top ? PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(side->top, 0)) : 0.0;
        r.tops[2 * k + 1] = side->top ? PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(side->top, 1)) : 0.0;
    }
    if (append_record(out, &r, ((RawLevels *)sides[0])->text, ((RawLevels *)sides[1])->text) < 0)
        goto done;
    result = Py_NewRef(Py_True);
done:
    Py_XDECREF(sides[0]);
    Py_XDECREF(sides[1]);
    return result;
}

/* pack_lines(out: bytearray, venues: dict, symbols: dict, items: list, start: int, line_type) -> int:
 * append a 'B' record for each item from ``start`` on while it is a ``line_type`` (a decoded line:
 * venue, symbol, bids and asks as msgspec.Raw, ts_event, ts_init) whose venue and symbol have ids and
 * whose sides are both non-empty and well formed; return the index of the first item it leaves to
 * the caller (announcements, new names, one-sided or malformed books), or len(items). The same
 * checks as RawLevels, without making the objects the worker would only take apart again. */
static BookFields line_fields; /* slots of the decoded line type (set on first use) */

PyObject *
records_pack_lines(PyObject *module, PyObject *args)
{
    PyObject *out, *venues, *symbols, *items, *line_type;
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "O!O!O!O!nO:pack_lines", &PyByteArray_Type, &out, &PyDict_Type, &venues,
                          &PyDict_Type, &symbols, &PyList_Type, &items, &i, &line_type))
        return NULL;
    for (; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if ((PyObject *)Py_TYPE(item) != line_type)
            break;
        BookRecord r;
        PyObject *values[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
        PyObject *names[6] = {s_venue, s_symbol, s_bids, s_asks, s_ts_event, s_ts_init};
        Py_buffer views[2] = {{0}, {0}};
        int handled = 0, failed = 0;
        if (line_fields.type != (PyTypeObject *)line_type
            && book_fields_init(&line_fields, (PyTypeObject *)line_type) < 0)
            return NULL;
        Py_ssize_t offsets[6] = {line_fields.venue, line_fields.symbol, line_fields.bids, line_fields.asks,
                                 line_fields.ts_event, line_fields.ts_init};
        for (int k = 0; k < 6 && !failed; k++)
            failed = !(values[k] = book_get(&line_fields, item, offsets[k], names[k]));
        PyObject *venue_id = failed ? NULL : PyDict_GetItemWithError(venues, values[0]);
        PyObject *symbol_id = venue_id ? PyDict_GetItemWithError(symbols, values[1]) : NULL;
        if (!failed && !PyErr_Occurred() && venue_id && symbol_id) {
            r.venue = (uint32_t)PyLong_AsUnsignedLong(venue_id);
            r.symbol = (uint32_t)PyLong_AsUnsignedLong(symbol_id);
            r.ts_event = PyLong_AsLongLong(values[4]);
            r.ts_init = PyLong_AsLongLong(values[5]);
            int ok = !PyErr_Occurred();
            if (!ok && PyErr_ExceptionMatches(PyExc_OverflowError))
                PyErr_Clear(); /* not an int64: the caller's general path decides */
            else
                failed = !ok;
            for (int k = 0; k < 2 && ok; k++) {
                if (PyObject_GetBuffer(values[2 + k], &views[k], PyBUF_SIMPLE) < 0) {
                    failed = 1;
                    ok = 0;
                    break;
                }
                Py_ssize_t count;
                double top[2];
                const char *text = views[k].buf;
                int err = levels_scan(text, text + views[k].len, &count, top);
                if (err == -2) { /* an error, not a malformed side */
                    failed = 1;
                    ok = 0;
                    break;
                }
                if (err < 0 || count == 0 || views[k].len > UINT32_MAX || count > UINT32_MAX) {
                    ok = 0; /* the caller's general path reports or converts the line */
                    break;
                }
                r.counts[k] = (uint32_t)count;
                r.lens[k] = (uint32_t)views[k].len;
                r.tops[2 * k] = top[0];
                r.tops[2 * k + 1] = top[1];
            }
            if (ok) {
                failed = append_record(out, &r, views[0].buf, views[1].buf) < 0;
                handled = !failed;
            }
        }
        else if (PyErr_Occurred())
            failed = 1;
        for (int k = 0; k < 2; k++)
            if (views[k].obj)
                PyBuffer_Release(&views[k]);
        for (int k = 0; k < 6; k++)
            Py_XDECREF(values[k]);
        if (failed)
            return NULL;
        if (!handled)
            break;
    }
    return PyLong_FromSsize_t(i);
}

/* -- the recorder's own line layout, without msgspec ---------------------------------------------
 *
 * ``arb record`` writes every book line with the same keys in the same order and no whitespace:
 * {"ts":1,"type":"BookUpdate","venue":"v","symbol":"A/B","bids":[...],"asks":[...],"ts_event":1,"ts_init":1}
 * (``ts`` optional). ``pack_chunk`` reads such lines in one pass. A chunk with any other line
 * (announcements, another layout, escapes in a name, a new venue or symbol, a one-sided or
 * malformed book, a blank line) is left whole to the general path, so counts and line numbers are
 * exactly the general path's.
 */

static int
expect(const char **p, const char *end, const char *literal, Py_ssize_t n)
{
    if (end - *p < n || memcmp(*p, literal, (size_t)n) != 0)
        return 0;
    *p += n;
    return 1;
}
#define EXPECT(p, end, s) expect(&(p), (end), (s), (Py_ssize_t)sizeof(s) - 1)

/* A JSON integer that fits int64 (and is not negative unless ``signed_ok``), or 0 if it is not one. */
static int
read_int(const char **p, const char *end, int64_t *out, int signed_ok)
{
    const char *q = *p;
    int negative = q < end && *q == '-';
    if (negative && !signed_ok)
        return 0;
    q += negative;
    const char *digits = q;
    uint64_t v = 0;
    while (q < end && IS_DIGIT(*q) && q - digits < 19)
        v = v * 10 + (uint64_t)(*q++ - '0');
    if (q == digits || (q < end && IS_DIGIT(*q)) || (*digits == '0' && q - digits > 1)
        || v > (uint64_t)INT64_MAX + (uint64_t)negative)
        return 0;
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    *p = q;
    return 1;
}

/* The id of a name (a JSON string without escapes) already in ``ids``: -1 if it is not, -2 on error.
 * Venues and symbols have separate dicts: a symbol only counts once it passed the BASE/QUOTE check. */
static long
read_name(const char **p, const char *end, PyObject *ids)
{
    const char *q = *p, *start = q;
    while (q < end && *q != '"') {
        if (*q == '\\' || (unsigned char)*q < 0x20)
            return -1;
        q++;
    }
    if (q >= end)
        return -1;
    PyObject *name = PyUnicode_DecodeUTF8(start, q - start, "strict");
    if (!name) {
        PyErr_Clear(); /* msgspec reports it */
        return -1;
    }
    PyObject *id = PyDict_GetItemWithError(ids, name);
    Py_DECREF(name);
    if (!id)
        return PyErr_Occurred() ? -2 : -1;
    *p = q + 1;
    return PyLong_AsLong(id);
}

/* Read one line of the recorder's layout at p and append its record; 1 done, 0 not that layout,
 * -1 on error. */
static int
pack_line(PyObject *out, PyObject *venues, PyObject *symbols, const char **at, const char *end)
{
    const char *p = *at;
    BookRecord r;
    int64_t ts;
    if (EXPECT(p, end, "{\"ts\":")) {
        if (!read_int(&p, end, &ts, 1) || !EXPECT(p, end, ","))
            return 0;
    }
    else if (!EXPECT(p, end, "{"))
        return 0;
    if (!EXPECT(p, end, "\"type\":\"BookUpdate\",\"venue\":\""))
        return 0;
    long venue = read_name(&p, end, venues);
    if (venue < 0 || !EXPECT(p, end, ",\"symbol\":\""))
        return venue == -2 ? -1 : 0;
    long symbol = read_name(&p, end, symbols);
    if (symbol < 0 || !EXPECT(p, end, ",\"bids\":"))
        return symbol == -2 ? -1 : 0;
    const char *sides[2], *ends[2];
    for (int k = 0; k < 2; k++) {
        if (k && !EXPECT(p, end, ",\"asks\":"))
            return 0;
        sides[k] = p;
        Py_ssize_t count;
        double top[2];
        int err = levels_scan_prefix(p, end, &count, top, &ends[k]);
        if (err == -2)
            return -1;
        if (err < 0 || count == 0 || count > UINT32_MAX || ends[k] - sides[k] > UINT32_MAX)
            return 0;
        r.counts[k] = (uint32_t)count;
        r.lens[k] = (uint32_t)(ends[k] - sides[k]);
        r.tops[2 * k] = top[0];
        r.tops[2 * k + 1] = top[1];
        p = ends[k];
    }
    /* timestamps are int64 ns >= 0, as the general path requires */
    if (!EXPECT(p, end, ",\"ts_event\":") || !read_int(&p, end, &r.ts_event, 0)
        || !EXPECT(p, end, ",\"ts_init\":") || !read_int(&p, end, &r.ts_init, 0) || !EXPECT(p, end, "}\n"))
        return 0;
    r.venue = (uint32_t)venue;
    r.symbol = (uint32_t)symbol;
    if (append_record(out, &r, sides[0], sides[1]) < 0)
        return -1;
    *at = p;
    return 1;
}

/* pack_chunk(out: bytearray, venues: dict, symbols: dict, chunk) -> int: lines packed when every line of
 * ``chunk`` (whole lines) has the recorder's layout and known names; else -1 with ``out`` as it was. */
PyObject *
records_pack_chunk(PyObject *module, PyObject *args)
{
    PyObject *out, *venues, *symbols, *chunk;
    if (!PyArg_ParseTuple(args, "O!O!O!O:pack_chunk", &PyByteArray_Type, &out, &PyDict_Type, &venues,
                          &PyDict_Type, &symbols, &chunk))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t before = PyByteArray_GET_SIZE(out), lines = 0;
    const char *p = view.buf, *end = p + view.len;
    int status = 1;
    while (p < end && (status = pack_line(out, venues, symbols, &p, end)) == 1)
        lines++;
    PyBuffer_Release(&view);
    if (status == 1 && p == end)
        return PyLong_FromSsize_t(lines);
    if (status < 0 || PyByteArray_Resize(out, before) < 0)
        return NULL;
    return PyLong_FromLong(-1);
}

/* A RawLevels over its own copy of text already checked by the sending process: a copy, so that a
 * book kept for long (a rarely updated market) keeps ~1 KiB alive, not the whole message. */
static PyObject *
trusted_levels(const char *text, Py_ssize_t len, Py_ssize_t count, double price, double amount)
{
    RawLevels *self = (RawLevels *)RawLevelsType.tp_alloc(&RawLevelsType, 0);
    if (!self)
        return NULL;
    if (!(self->owner = PyBytes_FromStringAndSize(text, len))) {
        Py_DECREF(self);
        return NULL;
    }
    self->text = PyBytes_AS_STRING(self->owner);
    self->len = len;
    self->count = count;
    if (count && !(self->top = levels_make_level(price, amount))) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* unpack(message: bytearray, start: int, names: list) -> (events, others): the records from ``start``
 * on, in order: BookUpdate events for 'B' records and, for 'E' records, the bytes they carry
 * (``others`` counts those). 'N' records (id, UTF-8 name) append to ``names``, which 'B' records
 * refer to by index. */
PyObject *
records_unpack(PyObject *module, PyObject *args)
{
    PyObject *msg, *names, *events = NULL;
    Py_ssize_t start, others = 0;
    if (!PyArg_ParseTuple(args, "O!nO!:unpack", &PyByteArray_Type, &msg, &start, &PyList_Type, &names))
        return NULL;
    const char *p = PyByteArray_AS_STRING(msg), *end = p + PyByteArray_GET_SIZE(msg);
    if (start < 0 || start > end - p)
        goto corrupt;
    p += start;
    if (!(events = PyList_New(0)))
        return NULL;
    while (p < end) {
        char kind = *p++;
        if (kind == 'B') {
            BookRecord r;
            if (end - p < (Py_ssize_t)sizeof r)
                goto corrupt;
            memcpy(&r, p, sizeof r);
            p += sizeof r;
            if ((Py_ssize_t)r.lens[0] + (Py_ssize_t)r.lens[1] > end - p || r.venue >= PyList_GET_SIZE(names)
                || r.symbol >= PyList_GET_SIZE(names))
                goto corrupt;
            PyObject *fields[6] = {PyList_GET_ITEM(names, r.venue), PyList_GET_ITEM(names, r.symbol), NULL, NULL,
                                   NULL, NULL};
            fields[2] = trusted_levels(p, r.lens[0], r.counts[0], r.tops[0], r.tops[1]);
            fields[3] = trusted_levels(p + r.lens[0], r.lens[1], r.counts[1], r.tops[2], r.tops[3]);
            fields[4] = PyLong_FromLongLong(r.ts_event);
            fields[5] = PyLong_FromLongLong(r.ts_init);
            p += r.lens[0] + r.lens[1];
            PyObject *book = NULL;
            if (fields[2] && fields[3] && fields[4] && fields[5])
                book = PyObject_Vectorcall(book_type, fields, 0, book_kwnames);
            for (int k = 2; k < 6; k++)
                Py_XDECREF(fields[k]);
            if (!book || PyList_Append(events, book) < 0) {
                Py_XDECREF(book);
                goto fail;
            }
            Py_DECREF(book);
        }
        else if (kind == 'N' || kind == 'E') {
            uint32_t id = 0, n;
            if (kind == 'N') {
                if (end - p < 4)
                    goto corrupt;
                memcpy(&id, p, 4);
                p += 4;
            }
            if (end - p < 4)
                goto corrupt;
            memcpy(&n, p, 4);
            p += 4;
            if ((Py_ssize_t)n > end - p)
                goto corrupt;
            PyObject *item = kind == 'N' ? PyUnicode_DecodeUTF8(p, n, "strict") : PyBytes_FromStringAndSize(p, n);
            p += n;
            if (!item)
                goto fail;
            int err;
            if (kind == 'N') {
                if (id != PyList_GET_SIZE(names)) {
                    Py_DECREF(item);
                    goto corrupt;
                }
                PyUnicode_InternInPlace(&item);
                err = PyList_Append(names, item);
            }
            else {
                err = PyList_Append(events, item);
                others++;
            }
            Py_DECREF(item);
            if (err < 0)
                goto fail;
        }
        else
            goto corrupt;
    }
    PyObject *result = Py_BuildValue("(On)", events, others);
    Py_DECREF(events);
    return result;
corrupt:
    PyErr_SetString(PyExc_ValueError, "corrupt message from the decoding process");
fail:
    Py_XDECREF(events);
    return NULL;
}

int
records_init(void)
{
    if (!(s_venue = PyUnicode_InternFromString("venue")) || !(s_symbol = PyUnicode_InternFromString("symbol"))
        || !(s_bids = PyUnicode_InternFromString("bids")) || !(s_asks = PyUnicode_InternFromString("asks"))
        || !(s_ts_event = PyUnicode_InternFromString("ts_event"))
        || !(s_ts_init = PyUnicode_InternFromString("ts_init")))
        return -1;
    if (!(book_kwnames = PyTuple_Pack(6, s_venue, s_symbol, s_bids, s_asks, s_ts_event, s_ts_init)))
        return -1;
    BookFields book_fields;
    if (book_fields_from_events(&book_fields) < 0)
        return -1;
    book_type = (PyObject *)book_fields.type;
    return 0;
}
