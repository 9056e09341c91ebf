"""The rows a ClickHouse read sees: the interactions table deduplicated, with its updates applied.

>>> relation_sql("t", {"score": "Nullable(Float64)"}, "1", [])
'SELECT * FROM `t` FINAL PREWHERE 1'

Exact before ClickHouse merges anything:

* **Duplicates** of a retried insert share the sorting key ``(toDate(timestamp), event_id)``: ``FINAL``
  collapses them at read time (a materialized view would count them twice, and miss later scores).
* **Updates** (``<table>_updates``, written by the sink) of text, number and datetime columns apply
  latest-wins: per key and field the
  value with the largest ``at`` (``argMaxIf``), whether keyed by ``response_id`` (``score()``) or by
  ``event_id`` (PromptLayer's follow-up): one ``ANY LEFT JOIN`` per key field, the later ``at`` of
  the two winning. Repeated copies of one update (a retried batch) carry the same value.

ClickHouse 18.16 rejects an alias that shadows a column it is computed from ("cyclic aliases"), so
every step names its columns ``__s<step>_<i>`` and the last step gives them their names back; it also
rejects ``if(c, NULL, x)`` with a Nullable ``x`` ("cannot be inside Nullable"): nulls are
``CAST(NULL AS Nullable(T))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wonkalytics.store.clickhouse import SORTING_KEY, column_kinds, quote

__all__ = ["relation_sql"]

_CONVERT = {"float": ("toFloat64OrNull({})", "Float64"), "int": ("toInt64OrNull({})", "Int64"),
            "text": ("{}", "String"), "datetime": ("parseDateTimeBestEffortOrNull({}, 'UTC')", "")}


def _converted(kind: str, type_: str, value: str) -> tuple[str, str]:
    """The expression reading update text ``value`` as a column of ``kind`` and ``type_``, and its type.

    A datetime is written by the sink as UTC ``YYYY-MM-DD HH:MM:SS`` and cast to the column's own type
    (``DateTime('UTC')``, ``Date``: the reflected table's, never input), so ``if()`` sees one type.
    """
    convert, target = _CONVERT[kind]
    if kind != "datetime":
        return convert.format(value), target
    bare = type_.removeprefix("Nullable(").removesuffix(")") if type_.startswith("Nullable(") else type_
    return f"CAST({convert.format(value)} AS Nullable({bare}))", bare


def relation_sql(table: str, types: Mapping[str, str], inner_where: str,
                 updated: Sequence[tuple[str, str]], params: dict[str, object] | None = None) -> str:
    """``SELECT`` of the rows of ``table`` where ``inner_where`` holds, every column under its own name.

    ``inner_where`` is checked before ``FINAL`` (``PREWHERE``: ``FINAL`` then merges only the rows that
    pass), so it may read only what every copy of a row shares and no update rewrites: the sorting key,
    and columns without updates (the caller's choice, store/clickhouse_source.py).

    ``updated`` lists the ``(key_field, field)`` pairs the updates table holds; pairs naming no
    column of this kind (a datetime, an unknown field) are left out. The values the statement needs
    are added to ``params`` (``%(…)s``: bound, never spliced).
    """
    base = f"SELECT * FROM {quote(table)} FINAL PREWHERE {inner_where}"  # noqa: S608 - quoted names, bound values
    kinds = column_kinds(types)
    columns = list(types)
    by_key: dict[str, list[str]] = {}
    for key_field, field in updated:
        if key_field in kinds and field in kinds and kinds[field] in _CONVERT and field not in SORTING_KEY:
            by_key.setdefault(key_field, []).append(field)
    if not by_key:
        return base
    bound = params if params is not None else {}
    fields = sorted({f for names in by_key.values() for f in names})
    where = {f: i for i, f in enumerate(fields)}
    step = [f"{quote(c)} AS __s0_{i}" for i, c in enumerate(columns)]
    step += [f"toFloat64(0) AS __s0_a{j}" for j in range(len(fields))]
    sql = f"SELECT {', '.join(step)} FROM ({base})"  # noqa: S608
    for s, (key_field, names) in enumerate(sorted(by_key.items()), start=1):
        bound[f"kf{s}"] = key_field
        latest = [f"key AS __k{s}"]
        for field in names:
            j = where[field]
            bound[f"f{s}_{j}"] = field
            cond = f"field = %(f{s}_{j})s"
            latest += [f"argMaxIf(value, at, {cond}) AS __u{s}_v{j}", f"maxIf(at, {cond}) AS __u{s}_a{j}",
                       f"argMaxIf(is_null, at, {cond}) AS __u{s}_n{j}"]
        updates = (f"SELECT {', '.join(latest)} FROM {quote(table + '_updates')} "  # noqa: S608
                   f"WHERE key_field = %(kf{s})s GROUP BY key")
        out = []
        for i, column in enumerate(columns):
            previous = f"__s{s - 1}_{i}"
            if column in names:
                j = where[column]
                converted, type_ = _converted(kinds[column], types[column], f"__u{s}_v{j}")
                value = f"if(__u{s}_n{j} = 1, CAST(NULL AS Nullable({type_})), {converted})"
                out.append(f"if(__u{s}_a{j} > __s{s - 1}_a{j}, {value}, {previous}) AS __s{s}_{i}")
            else:
                out.append(f"{previous} AS __s{s}_{i}")
        for field, j in where.items():
            at = (f"greatest(__u{s}_a{j}, __s{s - 1}_a{j})" if field in names else f"__s{s - 1}_a{j}")
            out.append(f"{at} AS __s{s}_a{j}")
        key = f"__s{s - 1}_{columns.index(key_field)}"
        sql = (f"SELECT {', '.join(out)} FROM (SELECT *, ifNull({key}, '') AS __k{s} FROM ({sql})) "  # noqa: S608
               f"ANY LEFT JOIN ({updates}) USING (__k{s})")
    last = len(by_key)
    names_back = ", ".join(f"__s{last}_{i} AS {quote(c)}" for i, c in enumerate(columns))
    return f"SELECT {names_back} FROM ({sql})"  # noqa: S608

