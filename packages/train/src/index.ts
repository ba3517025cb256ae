export const PACKAGE = '@foxgate/train';
