; SVG drawing code in backtick strings (svg(`<svg ...>`)) is XML.
((raw_string) @injection.content
  (#match? @injection.content "^`+\\s*<")
  (#set! injection.language "xml"))
