/**
 * A tree-sitter grammar for Assay (.assay scripts), mirroring
 * grammar/src/assay.pest and the precedence of its Pratt parser
 * (grammar/src/parse/builder.rs): or < and < not < comparisons and `in` <
 * `..` < + - < * / % < unary - < ** (right) < calls, fields, indexing.
 * Newlines are whitespace, as in Assay.
 */

const PREC = {
  or: 1,
  and: 2,
  not: 3,
  compare: 4,
  range: 5,
  add: 6,
  mul: 7,
  neg: 8,
  pow: 9,
  postfix: 10,
};

const commaSep = (rule) => optional(seq(rule, repeat(seq(",", rule)), optional(",")));

module.exports = grammar({
  name: "assay",

  extras: ($) => [/\s/, "\u{feff}", $.comment],

  word: ($) => $.identifier,

  conflicts: ($) => [
    [$._expression, $.lambda_parameters],
    // `x => {}`: a block, as Assay's parser tries a block first.
    [$.block, $.record],
  ],

  rules: {
    source_file: ($) => repeat(seq($._statement, optional(";"))),

    _statement: ($) =>
      choice(
        $.seed_statement,
        $.use_statement,
        $.let_statement,
        $.function_definition,
        $.if_statement,
        $.for_statement,
        $.return_statement,
        $.break_statement,
        $.continue_statement,
        $.show_statement,
        $.record_statement,
        $.assert_statement,
        $.assignment,
        $.expression_statement,
      ),

    seed_statement: ($) => seq("seed", $._expression),
    use_statement: ($) => seq("use", field("path", $.string), "as", field("alias", $.identifier)),
    let_statement: ($) => seq("let", field("name", $.identifier), "=", field("value", $._expression)),
    assignment: ($) =>
      seq(field("name", $.identifier), field("operator", choice("=", "+=", "-=", "*=", "/=")), field("value", $._expression)),
    function_definition: ($) =>
      seq("fn", field("name", $.identifier), field("parameters", $.parameters), field("body", $.block)),
    parameters: ($) => seq("(", commaSep($.parameter), ")"),
    parameter: ($) => seq(field("name", $.identifier), optional(seq("=", field("default", $._expression)))),
    if_statement: ($) =>
      seq(
        "if",
        field("condition", $._expression),
        field("consequence", $.block),
        optional(seq("else", field("alternative", choice($.if_statement, $.block)))),
      ),
    for_statement: ($) =>
      seq(
        "for",
        field("variable", $.identifier),
        optional(seq(",", field("item", $.identifier))),
        "in",
        field("iterable", $._expression),
        field("body", $.block),
      ),
    return_statement: ($) => prec.right(seq("return", optional($._expression))),
    break_statement: (_) => "break",
    continue_statement: (_) => "continue",
    show_statement: ($) => prec.right(seq("show", $._expression, repeat(seq(",", $._expression)))),
    record_statement: ($) => seq("record", field("name", $._expression), ",", field("value", $._expression)),
    assert_statement: ($) =>
      prec.right(seq("assert", field("condition", $._expression), optional(seq(",", field("message", $._expression))))),
    expression_statement: ($) => $._expression,
    block: ($) => prec.dynamic(1, seq("{", repeat(seq($._statement, optional(";"))), "}")),

    _expression: ($) =>
      choice(
        $.identifier,
        $.number,
        $.string,
        $.raw_string,
        $.true,
        $.false,
        $.none,
        $.list,
        $.record,
        $.parenthesized_expression,
        $.lambda,
        $.call,
        $.field_expression,
        $.index_expression,
        $.unary_expression,
        $.binary_expression,
      ),

    binary_expression: ($) => {
      const table = [
        [PREC.or, choice("or", "||")],
        [PREC.and, choice("and", "&&")],
        [PREC.compare, choice("==", "!=", "<", "<=", ">", ">=", "in")],
        [PREC.range, ".."],
        [PREC.add, choice("+", "-")],
        [PREC.mul, choice("*", "/", "%")],
      ];
      return choice(
        ...table.map(([p, op]) =>
          prec.left(p, seq(field("left", $._expression), field("operator", op), field("right", $._expression))),
        ),
        prec.right(PREC.pow, seq(field("left", $._expression), field("operator", "**"), field("right", $._expression))),
      );
    },

    unary_expression: ($) =>
      choice(
        prec(PREC.not, seq(field("operator", choice("not", "!")), field("operand", $._expression))),
        prec(PREC.neg, seq(field("operator", "-"), field("operand", $._expression))),
      ),

    call: ($) => prec(PREC.postfix, seq(field("function", $._expression), field("arguments", $.arguments))),
    arguments: ($) => seq("(", commaSep(choice($._expression, $.named_argument)), ")"),
    named_argument: ($) => seq(field("name", $.identifier), ":", field("value", $._expression)),
    field_expression: ($) => prec(PREC.postfix, seq(field("value", $._expression), ".", field("field", $.identifier))),
    index_expression: ($) =>
      prec(PREC.postfix, seq(field("value", $._expression), "[", field("index", $._expression), "]")),

    parenthesized_expression: ($) => seq("(", $._expression, ")"),
    lambda: ($) =>
      prec.right(seq(field("parameters", choice($.identifier, $.lambda_parameters)), "=>", field("body", choice($.block, $._expression)))),
    lambda_parameters: ($) => seq("(", commaSep($.identifier), ")"),
    list: ($) => seq("[", commaSep($._expression), "]"),
    record: ($) => seq("{", commaSep($.record_field), "}"),
    record_field: ($) => seq(field("name", choice($.identifier, $.string)), ":", field("value", $._expression)),

    number: (_) => /\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?/,
    true: (_) => "true",
    false: (_) => "false",
    none: (_) => "none",

    // "text {expr} text": {{ and }} are literal braces, as is a lone }.
    string: ($) => seq('"', repeat(choice($.string_content, $.escape_sequence, $.interpolation)), token.immediate('"')),
    string_content: (_) => token.immediate(prec(1, /([^"\\{}]|\{\{|\}\}?)+/)),
    escape_sequence: (_) => token.immediate(/\\(u\{[0-9a-fA-F]{1,6}\}|.)/),
    interpolation: ($) => seq(token.immediate("{"), $._expression, "}"),

    // `raw text`, or ```raw text with `backticks` inside```.
    raw_string: (_) => token(choice(/```([^`]|`[^`]|``[^`])*```/, /`[^`]*`/)),

    identifier: (_) => /[A-Za-z_][A-Za-z0-9_]*/,
    comment: (_) => token(seq("#", /.*/)),
  },
});
