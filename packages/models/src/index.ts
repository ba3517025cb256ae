export const PACKAGE = '@foxgate/models';
