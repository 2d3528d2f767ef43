/**
 * Imported first by the local entry points. The AWS SDK warns once per process that Node 20
 * support ends; the Lambda runtime is newer, and on a laptop the warning is noise, and on
 * stderr of a CLI whose output scripts read.
 */
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
