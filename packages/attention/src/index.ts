export const PACKAGE = '@foxgate/attention';
