<?php
// Handler mode: runwarm requires this file once per warm executor and calls handler() per
// invocation. $event is the JSON payload (checked against [params] in runwarm.toml first) as
// an array; the returned array is the result, as JSON. An exception fails the invocation
// (E002) with its class, message and trace.
declare(strict_types=1);

function handler(array $event, Runwarm\Context $context): array
{
    $name = $event['name'] ?? 'world';
    $context->log('greeting', 'info', ['who' => $name]); // a structured log record
    return ['greeting' => "hello $name"];
}
