<?php
// Handler mode: the shim (executors/php) requires this file once per executor and calls
// handler($event, $context) per request; the returned array is the result, as JSON.
declare(strict_types=1);

const GREETINGS = ['en' => 'hello', 'de' => 'hallo', 'fr' => 'bonjour', 'es' => 'hola'];

function handler(array $event, Runwarm\Context $context): array
{
    $name = $event['name'] ?? 'world';
    $lang = $event['lang'] ?? 'en';
    if (!isset(GREETINGS[$lang])) {
        throw new InvalidArgumentException("unknown language \"$lang\"");
    }
    $context->log('greeted', 'info', ['lang' => $lang]);
    return ['greeting' => GREETINGS[$lang] . " $name", 'runtime' => 'php ' . PHP_VERSION];
}
