; Assay highlights.

(comment) @comment
(number) @number
[(true) (false)] @constant.builtin
(none) @constant.builtin
(string) @string
(string_content) @string
(escape_sequence) @string.special
(raw_string) @string
(interpolation ["{" "}"] @punctuation.special)

["let" "fn" "use" "as"] @keyword
["if" "else" "for" "in" "return"] @keyword
(break_statement) @keyword
(continue_statement) @keyword
["seed" "show" "record" "assert"] @keyword
["and" "or" "not"] @keyword

(function_definition name: (identifier) @function)
(call function: (identifier) @function)
(call function: (field_expression field: (identifier) @function))
(parameter name: (identifier) @variable.parameter)
(lambda_parameters (identifier) @variable.parameter)
(lambda parameters: (identifier) @variable.parameter)
(named_argument name: (identifier) @variable.parameter)
(record_field name: (identifier) @property)
(field_expression field: (identifier) @property)
(use_statement alias: (identifier) @module)

["=" "+=" "-=" "*=" "/=" "=>" "==" "!=" "<" "<=" ">" ">=" ".." "+" "-" "*" "/" "%" "**" "!" "&&" "||"] @operator
["(" ")" "[" "]" "{" "}"] @punctuation.bracket
["," ":" "." ";"] @punctuation.delimiter
