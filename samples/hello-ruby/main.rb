# Handler mode: the shim (executors/ruby) loads this file once per executor and calls
# `handler(event, context)` per request; the return value is the result, as JSON.
GREETINGS = { "en" => "hello", "de" => "hallo", "fr" => "bonjour", "es" => "hola" }.freeze

def handler(event, context)
  name = event.fetch("name", "world")
  lang = event.fetch("lang", "en")
  greeting = GREETINGS.fetch(lang) { raise ArgumentError, "unknown language #{lang.inspect}" }
  context.log("greeted", level: :info, lang: lang)
  { greeting: "#{greeting} #{name}", runtime: "ruby #{RUBY_VERSION}" }
end
