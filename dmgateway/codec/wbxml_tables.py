"""The WBXML vocabulary tables shared by the reader (:mod:`.wbxml_reader`) and the
writer (:mod:`.wbxml_writer`): the body-piece form of a token byte, the kinds
of global tokens, and the lookup tables compiled once per vocabulary."""

from .wbxml_pages import (
    END, ENTITY, EXT_0, EXT_1, EXT_2, EXT_I_0, EXT_I_1, EXT_I_2, EXT_T_0, EXT_T_1, EXT_T_2,
    LITERAL, LITERAL_A, LITERAL_AC, LITERAL_C, OPAQUE, PI, STR_I, STR_T, SWITCH_PAGE,
)

#: how deep elements may nest, reading or writing
DEFAULT_MAX_DEPTH = 100


def piece(byte):
    """The body piece standing for token byte ``byte`` (see :mod:`.wbxml_writer`)."""
    return chr(byte) if byte < 0x80 else chr(0xDC00 + byte)


STR_I_PIECE = piece(STR_I)

# Compiled vocabulary tables

# Every tag-table entry is ``(name, ns, code)``: for a known tag ``code`` is
# its flag bits (0x40 content, 0x80 attributes); global tokens have a code
# from the K_* kinds below; unknown tags have name None and code K_UNKNOWN.
(K_END, K_STR_I, K_SWITCH, K_STR_T, K_OPAQUE, K_ENTITY, K_LITERAL, K_PI,
 K_EXT_I, K_EXT_T, K_EXT, K_UNKNOWN) = range(0x100, 0x10C)
GLOBAL_KINDS = {
    SWITCH_PAGE: K_SWITCH, END: K_END, ENTITY: K_ENTITY, STR_I: K_STR_I,
    LITERAL: K_LITERAL, LITERAL_C: K_LITERAL, LITERAL_A: K_LITERAL, LITERAL_AC: K_LITERAL,
    PI: K_PI, STR_T: K_STR_T, OPAQUE: K_OPAQUE,
    EXT_I_0: K_EXT_I, EXT_I_1: K_EXT_I, EXT_I_2: K_EXT_I,
    EXT_T_0: K_EXT_T, EXT_T_1: K_EXT_T, EXT_T_2: K_EXT_T,
    EXT_0: K_EXT, EXT_1: K_EXT, EXT_2: K_EXT,
}


class Compiled:
    """Lookup tables built once per vocabulary."""

    def __init__(self, vocab):
        globals_only = [(None, None, GLOBAL_KINDS[b] if (b & 0x3F) < 5 else K_UNKNOWN)
                        for b in range(256)]
        self.page_ns = [None] * 256
        self.tag_pages = [globals_only] * 256
        for page in set(vocab.tags) | set(vocab.extra_tags):
            ns = vocab.namespaces[page]
            self.page_ns[page] = ns
            names = {**vocab.extra_tags.get(page, {}), **vocab.tags.get(page, {})}
            table = list(globals_only)
            for token, name in names.items():
                for flags in (0x00, 0x40, 0x80, 0xC0):
                    table[token | flags] = (name, ns, flags)
            self.tag_pages[page] = table
        self.attr_starts = [{}] * 256
        self.attr_values = [{}] * 256
        for pages, extra, target in (
            (vocab.attr_starts, vocab.extra_attr_starts, self.attr_starts),
            (vocab.attr_values, vocab.extra_attr_values, self.attr_values),
        ):
            for page in set(pages) | set(extra):
                target[page] = {**extra.get(page, {}), **pages.get(page, {})}
        self.has_attributes = vocab.has_attributes

        # encoder: prefer the current page, else the lowest page holding the token
        self.enc_tags = {}
        for page in sorted(vocab.tags):
            ns = vocab.namespaces[page]
            for token, name in vocab.tags[page].items():
                forms = (token, piece(token), piece(token | 0x40),
                         piece(token | 0x40) + STR_I_PIECE)
                self._add_choice(self.enc_tags.setdefault(ns, {}), name, page, forms)
        # the same forms by the page they are written from: the tag's own page,
        # or another one that has the tag too
        self.page_tags = [{} for _ in range(256)]
        for ns, by_name in self.enc_tags.items():
            for name, (_, _, pages) in by_name.items():
                for page, forms in pages.items():
                    self.page_tags[page].setdefault(ns, {})[name] = forms
        self.ns_page = {}
        for page in sorted(vocab.namespaces, reverse=True):
            self.ns_page[vocab.namespaces[page]] = page
        self.enc_starts = {}  # (name, value) for value-carrying tokens, name for plain ones
        for page in sorted(vocab.attr_starts):
            for token, (name, prefix) in vocab.attr_starts[page].items():
                key = name if prefix is None else (name, prefix)
                self._add_choice(self.enc_starts, key, page, token)
        self.enc_values = {}
        for page in sorted(vocab.attr_values):
            for token, value in vocab.attr_values[page].items():
                self._add_choice(self.enc_values, value, page, token)

    @staticmethod
    def _add_choice(table, key, page, token):
        """``(default page, token, {page: token})``; a tag's token is its byte forms."""
        choice = table.get(key)
        if choice is None:
            table[key] = (page, token, {page: token})
        else:
            choice[2].setdefault(page, token)


def compiled(vocab):
    comp = vocab.compiled
    if comp is None:
        comp = vocab.compiled = Compiled(vocab)
    return comp
