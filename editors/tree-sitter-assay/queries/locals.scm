; Scopes and definitions: functions, blocks and lambdas open scopes; let,
; fn, parameters, loop variables and use aliases define names.
(source_file) @local.scope
(block) @local.scope
(function_definition) @local.scope
(lambda) @local.scope

(let_statement name: (identifier) @local.definition)
(function_definition name: (identifier) @local.definition)
(parameter name: (identifier) @local.definition)
(lambda_parameters (identifier) @local.definition)
(lambda parameters: (identifier) @local.definition)
(for_statement variable: (identifier) @local.definition)
(for_statement item: (identifier) @local.definition)
(use_statement alias: (identifier) @local.definition)

(identifier) @local.reference
