/* Shared by the two halves of the ``_levels`` extension: ``_levels.c`` (RawLevels and the checks of
 * JSON book sides) and ``_records.c`` (moving books between the decoding and replaying processes).
 */
#ifndef ARB_LEVELS_H
#define ARB_LEVELS_H

#include <stdint.h>
#include "_book.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;    /* the buffer the text came from (a msgspec.Raw or bytes), when made from one */
    PyObject *owner;   /* else the bytes holding the text (a copy out of the decoding process's message) */
    const char *text;  /* the JSON text of the array, ``len`` bytes */
    Py_ssize_t len;
    Py_ssize_t count; /* levels */
    PyObject *top;   /* (price, amount) of the best level, or NULL when empty */
    PyObject *full;  /* the tuple of every level, once parsed */
} RawLevels;

extern PyTypeObject RawLevelsType;

static inline const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* Validate ``[[p, a], ...]`` at the start of the text; count the levels, read the best one, and set
 * *stop past the closing bracket (and any whitespace after it). 0, -1 malformed, -2 error set. */
int levels_scan_prefix(const char *p, const char *end, Py_ssize_t *count, double top[2], const char **stop);
/* ``levels_scan_prefix`` for a text that must hold the array and nothing else. */
int levels_scan(const char *p, const char *end, Py_ssize_t *count, double top[2]);
/* A new (price, amount) tuple, untracked by the collector. */
PyObject *levels_make_level(double price, double amount);

/* _records.c: set up at module initialisation, then the module's functions. */
int records_init(void);
PyObject *records_pack_book(PyObject *module, PyObject *args);
PyObject *records_pack_lines(PyObject *module, PyObject *args);
PyObject *records_pack_chunk(PyObject *module, PyObject *args);
PyObject *records_unpack(PyObject *module, PyObject *args);

#endif
